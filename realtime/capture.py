"""Frame sources: cameras and streams, video files, images, folders and globs.

Every source is a context manager that yields ``Frame`` objects and exposes ``fps``,
``frame_count`` (None when unknown), ``size`` ((W, H) once known), ``dropped`` and ``live``.

A live source (camera, URL) runs a reader thread that keeps ONLY the newest frame, so a slow
consumer never builds a backlog; it counts the frames it overwrote in ``dropped``. A file source
reads every frame in order with timestamps from the container. Example::

    with open_source("clip.mp4") as source:
        for frame in source:
            ...
"""

from __future__ import annotations

import glob
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import cv2
import numpy as np

from realtime.errors import SourceError
from realtime.types import Frame

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` a live source uses (tests inject fakes)."""

    def isOpened(self) -> bool: ...  # noqa: N802 - OpenCV's name

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def get(self, prop: int) -> float: ...

    def release(self) -> None: ...


class FrameSource:
    """Base of every source: context manager, ``max_frames`` cap and the common attributes."""

    live = False
    still = False

    def __init__(self, source_id: str, max_frames: int | None = None) -> None:
        self.source_id = source_id
        self.max_frames = max_frames
        self.fps: float | None = None
        self.frame_count: int | None = None
        self.size: tuple[int, int] | None = None
        self.dropped = 0

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        return itertools.islice(self._frames(), self.max_frames)

    @property
    def input_files(self) -> tuple[Path, ...]:
        """Local files this source reads (none for cameras and streams): outputs must differ."""
        return ()

    @property
    def expected_frames(self) -> int | None:
        """Frames this run will yield, when known (for progress bars)."""
        counts = [n for n in (self.frame_count, self.max_frames) if n is not None]
        return min(counts) if counts else None

    def open(self) -> None:
        """Acquire the underlying device or file; raises SourceError."""

    def close(self) -> None:
        """Release the underlying device or file."""

    def _frames(self) -> Iterator[Frame]:
        raise NotImplementedError


class VideoFileSource(FrameSource):
    """Every frame of a video file (or animated GIF) in order, timed by container pts (PyAV)."""

    def __init__(self, path: Path, max_frames: int | None = None) -> None:
        super().__init__(str(path), max_frames)
        self.path = path
        self._container: Any = None

    @property
    def input_files(self) -> tuple[Path, ...]:
        return (self.path,)

    def open(self) -> None:
        import av

        if not self.path.is_file():
            raise SourceError(f"cannot open video '{self.path}': no such file")
        try:
            self._container = av.open(str(self.path))
            stream = self._container.streams.video[0]
        except (av.FFmpegError, OSError, IndexError, UnicodeDecodeError) as exc:
            self.close()
            reason = "no video stream" if isinstance(exc, IndexError) else _one_line(exc)
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
        if self._container is not None:
            self._container.close()
            self._container = None

    def _frames(self) -> Iterator[Frame]:
        import av

        if self._container is None:
            raise SourceError(f"video '{self.path}' is not open; use it as a context manager")
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
                    f"video '{self.path}' is corrupt after frame {index}: {_one_line(exc)}"
                ) from None
            image = frame.to_ndarray(format="bgr24")
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
        stream = self._container.streams.video[0]
        if stream.duration is None or stream.time_base is None:
            return
        end_s = float((stream.start_time or 0) * stream.time_base)
        end_s += float(stream.duration * stream.time_base)
        if last_t_s + 3.0 / (self.fps or 30.0) < end_s:
            raise SourceError(
                f"video '{self.path}' is truncated: decoded {frames} frames, "
                f"{last_t_s:.2f} s of {end_s:.2f} s"
            )


class ImageSource(FrameSource):
    """One frame per image file, in the given (sorted) order; unreadable images are skipped."""

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
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                if len(self.paths) == 1:
                    raise SourceError(f"cannot read image '{path}': missing or not an image")
                logger.warning("skipping unreadable image %s", path)
                continue
            self.size = (image.shape[1], image.shape[0])
            yield Frame(index=index, t_s=None, image=image, source_id=str(path))
            index += 1
        if index == 0:
            raise SourceError(f"no readable images in '{self.source_id}'")


class LiveSource(FrameSource):
    """A camera or stream read on its own thread; only the newest frame is kept.

    Args:
        open_capture: Returns a fresh, opened capture (``cv2.VideoCapture`` or a test fake).
        source_id: Name used in messages, e.g. ``camera:0``.
        reconnect_attempts: Reopen attempts after the device stops delivering frames.
        backoff_s: Wait before the first reopen; doubles on each further attempt.
        max_frames: Stop after this many delivered frames.
    """

    live = True

    def __init__(
        self,
        open_capture: Callable[[], Capture],
        source_id: str,
        reconnect_attempts: int = 3,
        backoff_s: float = 0.5,
        max_frames: int | None = None,
    ) -> None:
        super().__init__(source_id, max_frames)
        self._open_capture = open_capture
        self.reconnect_attempts = reconnect_attempts
        self.backoff_s = backoff_s
        self._capture: Capture | None = None
        self._cond = threading.Condition()
        self._latest: tuple[int, float, np.ndarray] | None = None
        self._error: SourceError | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.captured = 0

    def open(self) -> None:
        capture = self._open_capture()
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot open {self.source_id}: no such device or stream")
        self._capture = capture
        self.fps = float(capture.get(cv2.CAP_PROP_FPS)) or None
        self._t0 = time.monotonic()
        self._thread = threading.Thread(
            target=self._read_loop, name="fer-live-capture", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def _read_loop(self) -> None:
        """Read until stopped; after a failed read, reopen with back-off, then give up.

        Failures count until a frame arrives, so a device that reopens but never delivers
        still ends in SourceError after ``reconnect_attempts`` reopens.
        """
        failures = 0
        while not self._stop.is_set():
            assert self._capture is not None
            ok, image = self._capture.read()
            if ok and image is not None:
                failures = 0
                self._publish(image)
                continue
            if failures >= self.reconnect_attempts:
                self._fail()
                return
            if self._stop.wait(self.backoff_s * 2**failures):
                return
            failures += 1
            logger.warning("%s delivered no frame; reconnect %d", self.source_id, failures)
            self._capture.release()
            self._capture = self._open_capture()

    def _publish(self, image: np.ndarray) -> None:
        t_s = time.monotonic() - self._t0
        with self._cond:
            if self._latest is not None:
                self.dropped += 1
            self._latest = (self.captured, t_s, image)
            self.captured += 1
            self._cond.notify()

    def _fail(self) -> None:
        with self._cond:
            self._error = SourceError(
                f"lost {self.source_id}: no frames after "
                f"{self.reconnect_attempts} reconnect attempts"
            )
            self._cond.notify()

    def _frames(self) -> Iterator[Frame]:
        while True:
            with self._cond:
                while self._latest is None and self._error is None:
                    self._cond.wait(timeout=0.5)
                if self._latest is None:
                    assert self._error is not None
                    raise self._error
                index, t_s, image = self._latest
                self._latest = None
            self.size = (image.shape[1], image.shape[0])
            yield Frame(index=index, t_s=t_s, image=image, source_id=self.source_id)


def source_kind(spec: str) -> str:
    """Classify a ``--source`` value: camera, url, folder, glob, image or video."""
    path = Path(spec)
    if spec.isdigit():
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
    index = int(spec)
    return LiveSource(lambda: cv2.VideoCapture(index), f"camera {index}", attempts, 0.5, max_frames)


def _open_url(spec: str, max_frames: int | None, attempts: int) -> FrameSource:
    return LiveSource(
        lambda: cv2.VideoCapture(spec, cv2.CAP_FFMPEG),
        f"stream '{spec}'",
        attempts,
        0.5,
        max_frames,
    )


def _open_folder(spec: str, max_frames: int | None, attempts: int) -> FrameSource:
    paths = _image_paths([str(p) for p in Path(spec).iterdir()])
    if not paths:
        raise SourceError(f"no images in folder '{spec}'")
    return ImageSource(paths, spec, max_frames)


def _open_glob(spec: str, max_frames: int | None, attempts: int) -> FrameSource:
    paths = _image_paths(glob.glob(spec))
    if not paths:
        raise SourceError(f"no images match '{spec}'")
    return ImageSource(paths, spec, max_frames)


def _open_image(spec: str, max_frames: int | None, attempts: int) -> FrameSource:
    if not Path(spec).is_file():
        raise SourceError(f"cannot read image '{spec}': no such file")
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


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "strerror", None) or exc).strip() or type(exc).__name__
    return " ".join(text.split())
