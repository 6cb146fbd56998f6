"""The faces in one still image: printed, and drawn into a copy if you ask.

    python examples/still_image.py photo.jpg
    python examples/still_image.py photo.jpg --out annotated.jpg

``Recognizer.predict`` takes a path or a numpy array (BGR as OpenCV reads it, or
``color="rgb"``); the drawing below is plain OpenCV, to show what a ``Face`` holds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

import fer_live

GREEN = (0, 200, 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path, help="a photo (.jpg, .png, ...)")
    parser.add_argument("--out", type=Path, help="write a copy with boxes and labels here")
    args = parser.parse_args(argv)
    try:
        with fer_live.Recognizer() as rec:
            faces = rec.predict(args.image)
    except fer_live.FerLiveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not faces:
        print("no face")
    for face in faces:
        box = ", ".join(f"{v:.0f}" for v in face.box)
        print(f"face {face.track_id}: {face.label} {face.confidence:.2f} at ({box})")
    if args.out is not None:
        image = cv2.imread(str(args.image))
        if not cv2.imwrite(str(args.out), draw(image, faces)):
            print(f"error: cannot write '{args.out}'", file=sys.stderr)
            return 1
    return 0


def draw(image: np.ndarray, faces: list[fer_live.Face]) -> np.ndarray:
    """A box and ``label confidence`` above each face, in letters that grow with the image."""
    scale = max(0.5, image.shape[1] / 1280)
    thick = max(1, round(scale * 2))
    for face in faces:
        x0, y0, x1, y1 = (round(v) for v in face.box)
        cv2.rectangle(image, (x0, y0), (x1, y1), GREEN, thick)
        text = f"{face.label} {face.confidence:.2f}"
        origin = (x0, max(y0 - 4 * thick, round(20 * scale)))
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, GREEN, thick)
    return image


if __name__ == "__main__":
    sys.exit(main())
