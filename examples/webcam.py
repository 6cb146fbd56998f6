"""A webcam in your own OpenCV window, each frame pushed through ``Recognizer.update``.

    python examples/webcam.py                # camera 0; q or Esc quits
    python examples/webcam.py --camera 1
    python examples/webcam.py --video examples/data/single_face.mp4 --no-window --max-frames 30

The loop is yours: ``update`` takes one frame and returns its faces; tracks and smoothing carry
over from call to call. ``--no-window`` prints one line per frame instead of showing it.
"""

from __future__ import annotations

import argparse
import sys

import cv2

import fer_live

ESC = 27


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--camera", type=int, default=0, help="camera index (default 0)")
    source.add_argument("--video", help="read this video file instead of a camera")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument("--no-window", action="store_true", help="print instead of showing")
    args = parser.parse_args(argv)

    capture = cv2.VideoCapture(args.video if args.video else args.camera)
    if not capture.isOpened():
        name = args.video if args.video else f"camera {args.camera}"
        print(f"error: cannot open {name}", file=sys.stderr)
        return 1
    try:
        with fer_live.Recognizer() as rec:
            loop(capture, rec, args.max_frames, window=not args.no_window, file=bool(args.video))
    finally:
        capture.release()
        if not args.no_window:
            cv2.destroyAllWindows()
    return 0


def loop(
    capture: cv2.VideoCapture,
    rec: fer_live.Recognizer,
    max_frames: int | None,
    window: bool,
    file: bool,
) -> None:
    """Read, recognize, show (or print) until the source ends, ``max_frames``, or q / Esc."""
    count = 0
    while max_frames is None or count < max_frames:
        ok, frame = capture.read()
        if not ok:
            break
        # a file has its own clock; a camera's frames are timed as they arrive (t=None)
        t = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000 if file else None
        result = rec.update(frame, t, annotate=window)
        count += 1
        if not window:
            faces = ", ".join(f"{f.track_id}:{f.label} {f.confidence:.2f}" for f in result.faces)
            print(f"frame {result.frame}: {faces or 'no face'}", flush=True)
            continue
        cv2.imshow("fer-live", result.image)
        if cv2.waitKey(1) & 0xFF in (ord("q"), ESC):
            break


if __name__ == "__main__":
    sys.exit(main())
