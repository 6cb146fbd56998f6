"""Every video in a folder into one CSV: one row per face per frame, with a ``video`` column.

    python examples/folder_to_csv.py examples/data faces.csv
    python examples/folder_to_csv.py videos/ faces.csv --max-frames 300

One ``Recognizer`` serves every video (the model loads once); each video starts with new track
ids. Needs pandas: ``pip install "fer-live[pandas]"``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

import fer_live

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder of videos")
    parser.add_argument("csv", type=Path, help="the CSV to write")
    parser.add_argument("--max-frames", type=int, help="frames per video (default: all)")
    args = parser.parse_args(argv)

    videos = sorted(p for p in args.folder.glob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        print(f"error: no videos in '{args.folder}'", file=sys.stderr)
        return 1
    tables = []
    try:
        with fer_live.Recognizer() as rec:
            for video in videos:
                table = fer_live.analyze(video, recognizer=rec, max_frames=args.max_frames)
                frame = table.to_pandas()
                frame.insert(0, "video", video.name)
                tables.append(frame)
                print(f"{video.name}: {len(frame)} face records", file=sys.stderr)
    except fer_live.FerLiveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    pd.concat(tables, ignore_index=True).to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
