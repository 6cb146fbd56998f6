"""Face records as JSON Lines on stdout, one line per face per frame, for another program.

    python examples/records_to_stdout.py examples/data/single_face.mp4 | head -n 3
    python examples/records_to_stdout.py 0 | my_program      # camera 0, until Ctrl-C

Each line is the record ``fer-live --jsonl`` writes (``"schema": 1``). Lines are flushed frame by
frame, so the reader gets them live; when it stops reading, the source is released and the script
ends quietly. Messages go to stderr, never into the records.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import fer_live


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="video file, URL, image folder, or a camera index")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    args = parser.parse_args(argv)
    source: str | int = int(args.source) if args.source.isdigit() else args.source
    try:
        with fer_live.Recognizer() as rec:
            for result in rec.stream(source, max_frames=args.max_frames):
                lines = "".join(json.dumps(record) + "\n" for record in result.records())
                sys.stdout.write(lines)
                sys.stdout.flush()
    except BrokenPipeError:
        # the reader has gone (``| head``): leaving the loop released the source; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except KeyboardInterrupt:
        return 130
    except fer_live.FerLiveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
