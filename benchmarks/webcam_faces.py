"""Small faces in webcam-size video: found with the tiled probes, and what the probes cost.

Frames up to 1280 px are searched whole, which misses faces under about 16 % of the frame's
longer side; ``fer_live.detect.plan`` probes such frames with tiles once a second and searches
them tiled while small faces are found. Clips: grids of the Pexels clip (n x n faces, tile k
shifted by 37 k frames, ``grid_video.py``) scaled down to webcam sizes, so the faces are 58-154
px. Each goes through ``fer-live bench`` with default flags and with ``--detect-tiles 1`` (the
plan before the probes: whole frame, every frame): faces per frame, track ids, FPS. Then the
one-face clip (640 x 360, a 231 px face) and the same scaled to 1280 x 720, both plans
alternating for ``ROUNDS`` rounds: the FPS ratio as a geometric mean over rounds, so drifting
load and the order within a pair cancel out.

Run: ``python benchmarks/webcam_faces.py`` (about 7 min on 2 idle cores) writes
``benchmarks/results/webcam_faces.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import cv2

# Run as a script, so this folder is on sys.path and its modules import by name.
from crowd import alternate, bench
from grid_video import PEXELS, cache_dir, grid_frames, read_frames, write_video

REPO = Path(__file__).resolve().parents[1]
OLD: dict[str, Any] = {"detect_tiles": 1}
# (faces across, frame width, frame height)
CLIPS = ((2, 640, 360), (3, 640, 360), (4, 640, 360), (3, 1280, 720), (4, 1280, 720))
ROUNDS = 6


def scaled_grid(n: int, width: int, height: int) -> Path:
    """The n x n grid clip of the Pexels clip scaled to width x height, built once."""
    stat = PEXELS.stat()
    name = f"{PEXELS.stem}_grid{n}x{n}_{width}x{height}_{stat.st_size}_{int(stat.st_mtime)}.mp4"
    path = cache_dir() / name
    if not path.is_file():
        frames, rate = read_frames(PEXELS)
        scaled = (
            cv2.resize(grid, (width, height), interpolation=cv2.INTER_AREA)
            for grid in grid_frames(frames, n)
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, scaled, rate)
    return path


def found(n: int, width: int, height: int) -> dict[str, Any]:
    clip = scaled_grid(n, width, height)
    face_px = round(231 * width / (640 * n))  # the source's face is 231 px in 640 x 360
    rows = {name: bench(clip, flags) for name, flags in (("before", OLD), ("now", {}))}
    return {"faces": n * n, "size": f"{width}x{height}", "face_px": face_px, **rows}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Small faces in webcam-size video",
        "",
        f"{result['time']}; `fer-live bench`, default flags (now) against `--detect-tiles 1` "
        "(before: whole frame, every frame). Load average before each run in the JSON.",
        "",
        "| faces | frame | face px | faces / frame before -> now | track ids before -> now "
        "| FPS before -> now |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["clips"]:
        old, new = row["before"], row["now"]
        lines.append(
            f"| {row['faces']} | {row['size']} | {row['face_px']} "
            f"| {old['faces_per_frame']:.2f} -> {new['faces_per_frame']:.2f} "
            f"| {old['track_ids']} -> {new['track_ids']} | {old['fps']:.0f} -> {new['fps']:.0f} |"
        )
    lines.append("")
    for key, clip in (("one_face", "640 x 360, 231 px"), ("one_face_720p", "1280 x 720, 462 px")):
        single = result[key]
        lines.append(
            f"One face ({clip}), {ROUNDS} alternating rounds: {single['old_fps']:.0f} -> "
            f"{single['new_fps']:.0f} FPS (medians), ratio now / before x{single['ratio']:.3f} "
            f"(geometric mean of pairs), CPU per frame before / now x{single['cpu_ratio']:.3f}."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    result = {
        "time": time.strftime("%Y-%m-%d %H:%M"),
        "clips": [found(*clip) for clip in CLIPS],
        "one_face": alternate(PEXELS, OLD, {}, ROUNDS, lambda: None),
        "one_face_720p": alternate(scaled_grid(1, 1280, 720), OLD, {}, ROUNDS, lambda: None),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "webcam_faces.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "webcam_faces.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
