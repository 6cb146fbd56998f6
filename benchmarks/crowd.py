"""Crowd benchmark (issue 14): faces found, track ids and speed as the number of faces grows.

Grids of the Pexels clip with 1, 4, 9 and 16 faces (640 x 360 tiles, tile k shifted by 37 k
frames; ``grid_video.py``) go through ``fer-live bench`` with default flags: faces per frame,
track ids, end-to-end FPS, faces per second and, in the same run, the decode-only and
decode+detect ceilings. Then: the one-face clip with the old detection flags against the new
defaults (alternating, median of rounds), detector settings compared on the 3 x 3 grid, found
faces by face size in a 1080p frame (``face_sizes.py``), and ``fer-live report`` on the 3 x 3
grid's records. The numbers depend on what else runs on the machine: the load average is saved.

Run: ``python benchmarks/crowd.py`` (about 15 min on 2 busy cores; ``--quick`` skips the
comparison and the size sweep) writes ``benchmarks/results/crowd.{json,md,png}`` and prints the
acceptance numbers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script, so this folder is on sys.path and its modules import by name.
from crowd_tables import acceptance_rows, markdown, plot
from face_sizes import measure as measure_sizes
from grid_video import PEXELS, grid_video

from fer_live.commands.app import build_config
from fer_live.commands.app import main as fer_live
from fer_live.commands.bench import device_info, run_benchmark, versions

logger = logging.getLogger("crowd")
REPO = Path(__file__).resolve().parents[1]
GRIDS = (1, 2, 3, 4)
# The detection flags before issue 14: whole frame, every frame, at most 10 faces.
OLD_FLAGS: dict[str, Any] = {"detect_tiles": 1, "detect_every": 1, "max_faces": 10}
# Detector settings compared on the 3 x 3 grid (flags as fer-live takes them).
COMPARE: tuple[tuple[str, dict[str, Any]], ...] = (
    ("before: whole frame, every frame", OLD_FLAGS),
    (
        "full range, whole frame, every frame",
        {"detector": "full", "detect_tiles": 1, "detect_every": 1},
    ),
    ("2 tiles, every frame", {"detect_tiles": 2, "detect_every": 1}),
    ("2 tiles, every 2nd frame", {"detect_tiles": 2, "detect_every": 2}),
    ("default: 2 tiles, every 3rd frame", {}),
    ("3 tiles (3 x 2), every 3rd frame", {"detect_tiles": 3, "detect_every": 3}),
)
# Even: each order (old first, new first) runs equally often; the second of a pair ran ~5-10 %
# slower in both orders on the busy machine, and the geometric mean cancels that out.
SINGLE_ROUNDS = 6


def bench(video: Path, flags: dict[str, Any]) -> dict[str, Any]:
    """One ``fer-live bench`` run (no outputs), reduced to the numbers the tables need."""
    config = build_config(source=str(video), headless=True, **flags)
    load = os.getloadavg()[0]
    result = run_benchmark(config, ["fer-live", "bench", "-s", str(video)])
    fps, faces, stages = result["fps"], result["faces"], result["stages_ms"]
    return {
        "video": video.name,
        "flags": flags,
        "frames": result["frames"],
        "faces_per_frame": faces["per_frame"],
        "min_faces_per_frame": faces["min_per_frame"],
        "track_ids": faces["track_ids"],
        "faces_per_second": faces["per_second"],
        "fps": fps["end_to_end"],
        "decode_fps": fps["decode_only"],
        "decode_detect_fps": fps["decode_detect"],
        "ratio_to_decode": fps["ratio_to_decode"],
        "ratio_to_decode_detect": fps["ratio_to_decode_detect"],
        "cpu_ms_per_frame": result["cpu_ms_per_frame"],
        "detect_ms_mean": stages["detect"]["mean"],
        "infer_ms_mean": stages["infer"]["mean"],
        "load_before": load,
        "load_after": os.getloadavg()[0],
    }


def scaling(step: Callable[[], None]) -> list[dict[str, Any]]:
    """The default pipeline on grids of 1, 4, 9 and 16 faces."""
    rows = []
    for n in GRIDS:
        row = bench(grid_video(n), {})
        rows.append({"faces_present": n * n, **row})
        step()
    return rows


def single_face(step: Callable[[], None]) -> dict[str, Any]:
    """Old flags against the defaults on the one-face clip (``alternate``)."""
    return alternate(PEXELS, OLD_FLAGS, {}, SINGLE_ROUNDS, step)


def alternate(
    video: Path, old: dict[str, Any], new: dict[str, Any], rounds: int, step: Callable[[], None]
) -> dict[str, Any]:
    """Two flag sets on one clip, back to back in each round (new first every other round).

    The ratio is the geometric mean over rounds of new / old, so load that drifts during the
    run and the order within a pair cancel out.
    """
    runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    for i in range(rounds):
        order = (("old", old), ("new", new))
        for name, flags in order if i % 2 == 0 else order[::-1]:
            runs[name].append(bench(video, flags))
            step()
    pairs = list(zip(runs["old"], runs["new"], strict=True))
    return {
        "old_fps": statistics.median(r["fps"] for r in runs["old"]),
        "new_fps": statistics.median(r["fps"] for r in runs["new"]),
        "ratio": statistics.geometric_mean(new["fps"] / old["fps"] for old, new in pairs),
        "cpu_ratio": statistics.geometric_mean(
            old["cpu_ms_per_frame"] / new["cpu_ms_per_frame"] for old, new in pairs
        ),
        "runs": runs,
    }


def compare(step: Callable[[], None]) -> list[dict[str, Any]]:
    """Detector settings on the 3 x 3 grid."""
    rows = []
    for name, flags in COMPARE:
        rows.append({"setting": name, **bench(grid_video(3), flags)})
        step()
    return rows


def carry_quality(frames: int = 240) -> dict[str, Any]:
    """How well boxes the tracker carries match the detections they stand in for (3 x 3 grid).

    Detection with 2 tiles runs on every frame; the tracker then sees only every k-th frame's
    detections, and on the others its boxes are compared with that frame's detections (the
    best IoU of each carried box). The baseline is the IoU between consecutive detections.
    """
    import numpy as np

    from fer_live.capture.sources import open_source
    from fer_live.detect.mediapipe import MediapipeDetector
    from fer_live.numeric import box_iou
    from fer_live.track.iou import IouTracker

    with MediapipeDetector() as det, open_source(str(grid_video(3)), frames) as source:
        found = [det.detect(frame, tiles=2) for frame in source]
    out: dict[str, Any] = {}
    for every in (2, 3, 4):
        tracker, ious = IouTracker(min_hits=2, confirm_score=0.8), []
        for i, boxes in enumerate(found):
            tracks = tracker.update(boxes if i % every == 0 else None, i)
            if i % every and len(tracks) and len(boxes):
                ious += box_iou(tracks.xyxy, boxes.xyxy).max(axis=1).tolist()
        out[f"every_{every}"] = {
            "mean_iou": float(np.mean(ious)),
            "p5_iou": float(np.percentile(ious, 5)),
        }
    pairs = [
        box_iou(a.xyxy, b.xyxy).max(axis=1)
        for a, b in zip(found[:-1], found[1:], strict=True)
        if len(a) and len(b)
    ]
    consecutive = np.concatenate(pairs)
    out["consecutive_detections"] = {
        "mean_iou": float(consecutive.mean()),
        "p5_iou": float(np.percentile(consecutive, 5)),
    }
    return out


# What of the 3 x 3 report is kept beside the results (the per-track PNGs stay in the work folder).
REPORT_KEPT = ("summary.csv", "summary.json", "tracks.png")


def report_check(work: Path) -> dict[str, Any]:
    """``fer-live report`` on records of the 3 x 3 grid: tracks summarized, PNGs written."""
    records = work / "grid3x3.jsonl"
    out = work / "grid3x3_report"
    run_rc = fer_live(["-s", str(grid_video(3)), "--headless", "--jsonl", str(records)])
    report_rc = fer_live(["report", str(records), "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text()) if report_rc == 0 else {}
    tracks = summary.get("tracks", [])
    return {
        "run_rc": run_rc,
        "report_rc": report_rc,
        "tracks": len(tracks),
        "records_per_track": [t.get("records") for t in tracks],
        "pngs": sorted(p.name for p in out.glob("*.png")),
        "folder": str(out),
    }


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement, with a progress bar."""
    from rich.progress import Progress

    for n in GRIDS:  # build (or find) the clips before anything is timed
        grid_video(n)
    steps = len(GRIDS) + 2 * SINGLE_ROUNDS + (0 if args.quick else len(COMPARE) + 7) + 1
    result: dict[str, Any] = {"load_start": os.getloadavg()}
    with Progress() as progress:
        task = progress.add_task("crowd benchmark", total=steps)

        def step() -> None:
            progress.advance(task)

        result["scaling"] = scaling(step)
        result["single_face"] = single_face(step)
        if not args.quick:
            result["compare"] = compare(step)
            result["face_sizes"] = measure_sizes(PEXELS, on_step=step)
            result["carry"] = carry_quality()
            step()
        work = args.report_dir or Path(tempfile.mkdtemp(prefix="crowd_report_"))
        result["report"] = report_check(work)
        step()
    result["load_end"] = os.getloadavg()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--quick", action="store_true", help="skip the comparison and sizes")
    parser.add_argument("--report-dir", type=Path, help="keep the 3 x 3 records and report here")
    parser.add_argument(
        "--from-json", type=Path, help="only rebuild the tables and PNG from a saved crowd.json"
    )
    parser.add_argument(
        "--note",
        default="2 cores shared with a one-thread training run (about one core busy)",
        help="machine conditions, saved with the results",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.from_json is not None:
        result = json.loads(args.from_json.read_text())
    else:
        started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        result = run_all(args)
        result.update(
            {
                "time": started,
                "note": args.note,
                "command": " ".join(["python", *sys.argv]),
                "device": device_info(),
                "versions": versions(),
            }
        )
        kept = args.out / "crowd_report"
        kept.mkdir(exist_ok=True)
        for name in REPORT_KEPT:
            shutil.copyfile(Path(result["report"]["folder"]) / name, kept / name)
    result["acceptance"] = acceptance_rows(result)
    (args.out / "crowd.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    (args.out / "crowd.md").write_text(markdown(result))
    plot(result, args.out / "crowd.png")
    from rich.console import Console
    from rich.table import Table

    table = Table(title="issue 14 acceptance")
    for column in ("item", "measured", "target", "met"):
        table.add_column(column)
    for row in result["acceptance"]:
        table.add_row(row["item"], row["measured"], row["target"], "yes" if row["met"] else "NO")
    Console().print(table)
    print(f"wrote {args.out / 'crowd.md'}, crowd.json, crowd.png")


if __name__ == "__main__":
    main()
