"""Frame sources: cameras and streams, video files, images, folders and globs.

Every source is a context manager that yields ``Frame`` objects and exposes ``fps``,
``frame_count`` (None when unknown), ``size`` ((W, H) of the last frame), ``dropped`` and
``live``.

A camera or a live stream runs a reader thread behind a small bounded queue (``LiveSource``):
bursts are kept, and only when the consumer falls behind is the oldest frame dropped and counted.
A URL is decoded with PyAV (``AvCapture``); when it turns out to be a file of known length it is
read once, every frame, and ends like a file. A file source reads every frame in order, upright,
with timestamps from the container. Sources show a masked name (``source_id``); the real URL is
only used to open it. Example::

    with open_source("clip.mp4") as source:
        for frame in source:
            ...
"""

from __future__ import annotations

import glob
import logging
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import cv2
import numpy as np

from fer_live.capture.base import Capture, FrameSource, one_line
from fer_live.capture.live import LiveSource
from fer_live.capture.native_log import quiet_native_stderr
from fer_live.capture.pyav import AvCapture, reaches_end, stated_end_s, upright_bgr
from fer_live.capture.read_ahead import ReadAhead
from fer_live.capture.redact import mask_url
from fer_live.config import camera_index
from fer_live.errors import SourceError, not_a_file
from fer_live.types import Frame

_READ_AHEAD = 4  # frames decoded ahead: covers a slow frame without holding much memory

__all__ = [
    "Capture",
    "FrameSource",
    "ImageSource",
    "LiveSource",
    "VideoFileSource",
    "open_source",
    "source_kind",
]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
# queue lengths: a camera delivers evenly (little lag wanted); a network stream comes in bursts
CAMERA_BUFFER_FRAMES = 4
STREAM_BUFFER_FRAMES = 32


class VideoFileSource(FrameSource):
    """Every frame of a video file (or animated GIF) in order, timed by container pts (PyAV).

    Frames are decoded a few ahead on a thread (``fer_live.capture.read_ahead``), so decoding
    overlaps the pipeline's work on the current frame; none is skipped.

    Frames are turned upright as the stream's display matrix (or ``rotate`` tag) says, so a
    phone video recorded in portrait is processed in portrait; ``size`` is the upright size.
    """

    def __init__(self, path: Path, max_frames: int | None = None) -> None:
        super().__init__(str(path), max_frames)
        self.path = path
        self._container: Any = None
        self._reader: ReadAhead[Frame] | None = None

    @property
    def input_files(self) -> tuple[Path, ...]:
        return (self.path,)

    @property
    def audio_file(self) -> Path | None:
        return self.path

    def open(self) -> None:
        import av

        if not self.path.is_file():  # /dev/zero or a FIFO would be read forever
            raise SourceError(f"cannot open video '{self.path}': {not_a_file(self.path)}")
        try:
            self._container = av.open(str(self.path))
            stream = self._container.streams.video[0]
        except (av.FFmpegError, OSError, IndexError, UnicodeDecodeError) as exc:
            self.close()
            reason = "no video stream" if isinstance(exc, IndexError) else one_line(exc)
            raise SourceError(f"cannot open video '{self.path}': {reason}") from None
        if stream.codec_context is None:
            self.close()
            raise SourceError(f"cannot open video '{self.path}': unsupported codec")
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else None
        self.frame_count = int(stream.frames) or None
        self.size = (int(stream.codec_context.width), int(stream.codec_context.height))

    def close(self) -> None:
        if self._reader is not None:  # it reads from the container: end it first
            self._reader.stop()
            self._reader = None
        if self._container is not None:
            self._container.close()
            self._container = None

    def _frames(self) -> Iterator[Frame]:
        if self._container is None:
            raise SourceError(f"video '{self.path}' is not open; use it as a context manager")
        self._reader = ReadAhead(self._decode, depth=_READ_AHEAD, name="decode")
        yield from self._reader

    def _decode(self) -> Iterator[Frame]:
        import av

        stream = self._container.streams.video[0]
        decoded = self._container.decode(stream)
        index, t0, t_s = 0, None, 0.0
        while True:
            try:
                frame = next(decoded)
            except StopIteration:
                break
            except (av.FFmpegError, ValueError) as exc:
                raise SourceError(
                    f"video '{self.path}' is corrupt after frame {index}: {one_line(exc)}"
                ) from None
            image = upright_bgr(frame, stream)  # phone videos carry a rotation
            self.size = (image.shape[1], image.shape[0])
            t_s = frame.time if frame.time is not None else index / (self.fps or 30.0)
            t0 = t_s if t0 is None else t0
            yield Frame(index=index, t_s=float(t_s - t0), image=image, source_id=self.source_id)
            index += 1
        self._check_complete(index, t_s)

    def _check_complete(self, frames: int, last_t_s: float) -> None:
        """Raise when decoding stopped well before the container's stated end (a cut file)."""
        if frames == 0:
            raise SourceError(f"video '{self.path}' has no decodable frames")
        if self.max_frames is not None and frames >= self.max_frames:
            return
        end_s = stated_end_s(self._container.streams.video[0])
        if end_s is not None and not reaches_end(last_t_s, end_s, self.fps):
            raise SourceError(
                f"video '{self.path}' is truncated: decoded {frames} frames, "
                f"{last_t_s:.2f} s of {end_s:.2f} s"
            )


# How a file that does not decode ends when it was cut short (the decoder needs this marker).
_END_MARKERS = {b"\xff\xd8": b"\xff\xd9", b"\x89PNG": b"IEND"}


def _undecodable(path: Path, data: bytes) -> SourceError:
    for start, end in _END_MARKERS.items():
        if data.startswith(start) and end not in data[-64:]:
            return SourceError(f"cannot read image '{path}': it is cut short (truncated)")
    return SourceError(f"cannot read image '{path}': not an image, or damaged")


def read_image(path: Path) -> np.ndarray:
    """Decode one image file (BGR, turned as its EXIF orientation says).

    Only a regular file is read: opening a FIFO would wait for a writer forever, so the file is
    opened without blocking and checked before anything is read. The decoders' own messages
    (libjpeg's "Premature end of JPEG file", libpng's errors) are muted: the reason comes back
    once, in the SourceError.

    Raises:
        SourceError: The file is missing, not a regular file, or not a decodable image.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise SourceError(f"cannot read image '{path}': {one_line(exc)}") from None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SourceError(f"cannot read image '{path}': not a regular file")
        try:
            data = file.read()
        except OSError as exc:
            raise SourceError(f"cannot read image '{path}': {one_line(exc)}") from None
    if not data:
        raise SourceError(f"cannot read image '{path}': the file is empty")
    with quiet_native_stderr():
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise _undecodable(path, data)
    return image


class ImageSource(FrameSource):
    """One frame per image file, in the given (sorted) order.

    In a folder or glob, a file that cannot be read (not a regular file, not an image, cut
    short) is skipped with one warning and counted in ``skipped``; a single image raises.
    """

    still = True

    def __init__(self, paths: list[Path], source_id: str, max_frames: int | None = None) -> None:
        super().__init__(source_id, max_frames)
        if not paths:
            raise SourceError(f"no images found in '{source_id}'")
        self.paths = paths
        self.frame_count = len(paths)

    @property
    def input_files(self) -> tuple[Path, ...]:
        return tuple(self.paths)

    def _frames(self) -> Iterator[Frame]:
        index = 0
        for path in self.paths:
            try:
                image = read_image(path)
            except SourceError as exc:
                if len(self.paths) == 1:
                    raise
                logger.warning("%s; skipping it", exc)
                self.skipped += 1
                continue
            self.size = (image.shape[1], image.shape[0])
            yield Frame(index=index, t_s=None, image=image, source_id=str(path))
            index += 1
        if index == 0:
            raise SourceError(f"no readable images in '{self.source_id}'")


def source_kind(spec: str) -> str:
    """Classify a ``--source`` value: camera, url, folder, glob, image or video."""
    path = Path(spec)
    if camera_index(spec) is not None:
        return "camera"
    if _URL.match(spec):
        return "url"
    if path.is_dir():
        return "folder"
    if any(ch in spec for ch in "*?[") and not path.exists():
        return "glob"
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return "image"
    return "video"


def _image_paths(paths: list[str]) -> list[Path]:
    return sorted(Path(p) for p in paths if Path(p).suffix.lower() in IMAGE_SUFFIXES)


def _open_camera(spec: str, max_frames: int | None, attempts: int) -> FrameSource:
    index = int(spec)  # CaptureConfig bounds it (fer_live.config.MAX_CAMERA_INDEX)
    return LiveSource(
        lambda: cv2.VideoCapture(index),
        f"camera {index}",
        attempts,
        0.5,
        max_frames,
        buffer_frames=CAMERA_BUFFER_FRAMES,
    )


def _open_url(spec: str, max_frames: int | None, attempts: int) -> FrameSource:
    """A file:// URL is a local video; any other URL is read by PyAV on a reader thread.

    A stream that delivered frames and then stops (the server ended it) is retried
    ``attempts`` times with back-off, then ends normally.
    """
    parts = urlsplit(spec)
    if parts.scheme.lower() == "file":
        return VideoFileSource(Path(unquote(parts.path)), max_frames)
    shown = mask_url(spec)
    return LiveSource(
        lambda: AvCapture(spec),
        shown,
        attempts,
        0.5,
        max_frames,
        buffer_frames=STREAM_BUFFER_FRAMES,
        label=f"stream '{shown}'",
        end_ok=True,
    )


def _open_folder(spec: str, max_frames: int | None, attempts: int) -> FrameSource:
    paths = _image_paths([str(p) for p in Path(spec).iterdir()])
    if not paths:
        raise SourceError(f"no images in folder '{spec}'")
    return ImageSource(paths, spec, max_frames)


def _open_glob(spec: str, max_frames: int | None, attempts: int) -> FrameSource:
    paths = _image_paths(glob.glob(spec, recursive=True))  # ``**`` matches any depth
    if not paths:
        raise SourceError(f"no images match '{spec}'")
    return ImageSource(paths, spec, max_frames)


def _open_image(spec: str, max_frames: int | None, attempts: int) -> FrameSource:
    if not Path(spec).is_file():
        raise SourceError(f"cannot read image '{spec}': {not_a_file(Path(spec))}")
    return ImageSource([Path(spec)], spec, max_frames)


def _open_video(spec: str, max_frames: int | None, attempts: int) -> FrameSource:
    return VideoFileSource(Path(spec), max_frames)


_OPENERS: dict[str, Callable[[str, int | None, int], FrameSource]] = {
    "camera": _open_camera,
    "url": _open_url,
    "folder": _open_folder,
    "glob": _open_glob,
    "image": _open_image,
    "video": _open_video,
}


def open_source(
    spec: str, max_frames: int | None = None, reconnect_attempts: int = 3
) -> FrameSource:
    """Make the source for a ``--source`` value (not yet opened: use it in a ``with``).

    Args:
        spec: Camera index, URL, video file, image file, folder or glob.
        max_frames: Stop after this many frames.
        reconnect_attempts: Reopen attempts for live sources.

    Raises:
        SourceError: A folder or glob holds no images, or an image file is missing.
    """
    return _OPENERS[source_kind(spec)](spec, max_frames, reconnect_attempts)
