"""The base of every frame source, and the part of ``cv2.VideoCapture`` a live source reads."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Protocol

import numpy as np

from fer_live.types import Frame


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` a live source uses (tests inject fakes)."""

    def isOpened(self) -> bool: ...  # noqa: N802 - OpenCV's name

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def get(self, prop: int) -> float: ...

    def release(self) -> None: ...


class FrameSource:
    """Base of every source: context manager, ``max_frames`` cap and the common attributes.

    Args:
        source_id: The name shown to users and written in records. For a URL it is masked
            (``fer_live.capture.redact.mask_url``); the real URL stays private to the opener.
        max_frames: Stop after this many frames.
    """

    live = False
    still = False

    def __init__(self, source_id: str, max_frames: int | None = None) -> None:
        self.source_id = source_id
        self.max_frames = max_frames
        self.fps: float | None = None
        self.frame_count: int | None = None
        self.size: tuple[int, int] | None = None
        self.dropped = 0
        self.skipped = 0  # inputs passed over (an image folder's unreadable files)

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
    def audio_file(self) -> Path | None:
        """The local video file whose sound an annotated video gets (None: no sound)."""
        return None

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


def one_line(exc: BaseException) -> str:
    """An exception's message (or OS error text) on one line."""
    text = str(getattr(exc, "strerror", None) or exc).strip() or type(exc).__name__
    return " ".join(text.split())
