"""A batch worker's memory on a long video: resident set size (RSS) over a 10-minute clip.

Builds a clip of at least ``--minutes`` minutes by looping the shared Pexels clip (640 x 360,
24 fps; cached under ``~/.cache/fer-live/crowd`` like the grid clips), runs ``fer-live batch``
on it with one worker and the shipped model, samples the worker's and the driver's VmRSS
(``/proc/<pid>/status``) every second, and writes ``benchmarks/results/batch_memory.{json,png}``
with the first, peak and last RSS and the growth over the second half of the run.

Run: ``python benchmarks/batch_memory.py`` (Linux; a few minutes).
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from grid_video import PEXELS, cache_dir, read_frames, write_video  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
SCRIPT = Path(sys.executable).with_name("fer-live")


def long_clip(minutes: float) -> Path:
    """The Pexels clip looped to at least ``minutes`` minutes (built once)."""
    frames, rate = read_frames(PEXELS)
    loops = int(minutes * 60 * float(rate) // len(frames)) + 1
    stat = PEXELS.stat()
    path = cache_dir() / f"{PEXELS.stem}_x{loops}_{stat.st_size}_{int(stat.st_mtime)}.mp4"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, (frames[i % len(frames)] for i in range(loops * len(frames))), rate)
    return path


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def worker_pid(driver: int) -> int | None:
    for task in Path(f"/proc/{driver}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    return int(child)
            except OSError:
                continue
    return None


def sample(clip: Path, out: Path) -> dict[str, Any]:
    """Run the job and sample RSS every second until it ends."""
    argv = [str(SCRIPT), "batch", str(clip), "--out", str(out), "--jobs", "1"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.monotonic()
    rows: list[dict[str, float | None]] = []
    worker = None
    while proc.poll() is None:
        worker = worker or worker_pid(proc.pid)
        rows.append(
            {
                "t_s": round(time.monotonic() - start, 1),
                "worker_mib": rss_mib(worker) if worker else None,
                "driver_mib": rss_mib(proc.pid),
            }
        )
        time.sleep(1.0)
    if proc.returncode != 0:
        raise SystemExit(f"the batch job failed ({proc.returncode})")
    job = json.loads((out / "job.json").read_text())["inputs"][0]
    return {"samples": rows, "frames": job["frames"], "duration_s": job["duration_s"],
            "fps": job["fps"], "wall_s": time.monotonic() - start}  # fmt: skip


def summarize(result: dict[str, Any]) -> dict[str, float]:
    """First RSS once the model is loaded (10 s in), peak, last, and the second half's growth."""
    worker = [(r["t_s"], r["worker_mib"]) for r in result["samples"] if r["worker_mib"]]
    loaded = [m for t, m in worker if t >= 10.0] or [m for _, m in worker]
    half = loaded[len(loaded) // 2 :]
    return {
        "first_mib": loaded[0],
        "peak_mib": max(loaded),
        "last_mib": loaded[-1],
        "second_half_growth_mib": half[-1] - half[0],
        "driver_peak_mib": max(r["driver_mib"] or 0.0 for r in result["samples"]),
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["samples"]
    fig, ax = plt.subplots(figsize=(7, 3))
    for key, label in (("worker_mib", "worker"), ("driver_mib", "driver")):
        points = [(r["t_s"], r[key]) for r in rows if r[key]]
        ax.plot([t for t, _ in points], [m for _, m in points], label=label)
    ax.set_xlabel("seconds")
    ax.set_ylabel("RSS (MiB)")
    ax.set_ylim(bottom=0)
    ax.legend()
    minutes = result["duration_s"] / 60.0
    ax.set_title(
        f"fer-live batch, one worker, a {minutes:.1f}-minute video ({result['frames']} frames)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="Length of the clip.")
    parser.add_argument("--note", default="", help="A line about the machine's load.")
    args = parser.parse_args()
    clip = long_clip(args.minutes)
    with tempfile.TemporaryDirectory(prefix="fer-live-batch-memory-") as work:
        result = sample(clip, Path(work) / "job")
    result["summary"] = summarize(result)
    result["note"] = args.note
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "batch_memory.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(result, RESULTS / "batch_memory.png")
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
