"""A camera or stream read on its own thread, behind a small bounded queue.

Frames that arrive together (a network stream delivers them in bursts) wait in the queue while
the consumer keeps up on average; when the queue is full the OLDEST frame is dropped and counted
in ``dropped``, so a slow consumer never builds a backlog longer than the queue. A capture that
says it is ``finite`` (a file behind a URL) is read once in order with back-pressure instead:
nothing is dropped, and its end is the end of the source, never a reconnect.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from fer_live.capture.base import Capture, FrameSource
from fer_live.capture.redact import mask_url
from fer_live.errors import SourceError
from fer_live.types import Frame

logger = logging.getLogger(__name__)


class LiveSource(FrameSource):
    """A camera or stream read on its own thread; bounded queue, oldest frame dropped first.

    Args:
        open_capture: Returns a fresh, opened capture (``cv2.VideoCapture``, an ``AvCapture``
            or a test fake).
        source_id: Name shown and recorded, e.g. ``camera 0`` or a masked URL.
        reconnect_attempts: Reopen attempts after the device stops delivering frames.
        backoff_s: Wait before the first reopen; doubles on each further attempt.
        max_frames: Stop after this many delivered frames.
        buffer_frames: Frames the queue holds before the oldest is dropped.
        label: Name in messages (default ``source_id``), e.g. ``stream 'rtsp://...'``.
        end_ok: A source that delivered frames and then cannot be reopened has ended (a stream
            the server stopped): finish normally instead of raising SourceError.
        inputs: Local files the source reads (outputs must differ).
    """

    live = True

    def __init__(
        self,
        open_capture: Callable[[], Capture],
        source_id: str,
        reconnect_attempts: int = 3,
        backoff_s: float = 0.5,
        max_frames: int | None = None,
        *,
        buffer_frames: int = 4,
        label: str | None = None,
        end_ok: bool = False,
        inputs: tuple[Path, ...] = (),
    ) -> None:
        super().__init__(source_id, max_frames)
        if buffer_frames < 1:
            raise ValueError(f"buffer_frames must be >= 1, got {buffer_frames}")
        self._open_capture = open_capture
        self.reconnect_attempts = reconnect_attempts
        self.backoff_s = backoff_s
        self.buffer_frames = buffer_frames
        self.label = label or source_id
        self.end_ok = end_ok
        self._inputs = inputs
        self._capture: Capture | None = None
        self._cond = threading.Condition()
        self._queue: collections.deque[tuple[int, float, np.ndarray]] = collections.deque()
        self._done = False
        self._error: SourceError | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._finite = False
        self.captured = 0

    @property
    def input_files(self) -> tuple[Path, ...]:
        return self._inputs

    def open(self) -> None:
        capture = self._open_capture()
        if not capture.isOpened():
            reason = getattr(capture, "error", None) or "no such device or stream"
            capture.release()
            raise SourceError(f"cannot open {self.label}: {reason}")
        self._capture = capture
        self._finite = bool(getattr(capture, "finite", False))
        self.live = not self._finite
        self.fps = float(capture.get(cv2.CAP_PROP_FPS)) or None
        self.frame_count = getattr(capture, "frame_count", None) if self._finite else None
        self._t0 = time.monotonic()
        self._thread = threading.Thread(
            target=self._read_loop, name="fer-live-capture", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()  # wakes a finite reader waiting for room
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():
                logger.warning("%s: the reader did not stop; leaving it behind", self.label)
            self._thread = None

    def _read_loop(self) -> None:
        """Read until stopped or done; the thread owns the capture and releases it."""
        try:
            error = self._read_until_done()
        except Exception as exc:  # never die silently: the consumer would wait forever
            error = SourceError(f"{self.label} failed: {mask_url(str(exc))}")
        finally:
            if self._capture is not None:
                self._capture.release()
                self._capture = None
        with self._cond:
            self._error, self._done = error, True
            self._cond.notify_all()

    def _read_until_done(self) -> SourceError | None:
        """After a failed read, reopen with back-off, then give up.

        Failures count until a frame arrives, so a device that reopens but never delivers
        still ends after ``reconnect_attempts`` reopens.

        Returns:
            The error to raise after the queued frames, or None for a normal end.
        """
        failures = 0
        while not self._stop.is_set():
            assert self._capture is not None
            ok, image = self._capture.read()
            if ok and image is not None:
                failures = 0
                self._publish(image)
                continue
            if self._finite:  # a file behind a URL: read once, never replayed
                return self._finite_end()
            if failures >= self.reconnect_attempts:
                return self._lost()
            if self._stop.wait(self.backoff_s * 2**failures):
                return None
            failures += 1
            logger.warning("%s delivered no frame; reconnect %d", self.label, failures)
            self._capture.release()
            self._capture = self._open_capture()
        return None

    def _finite_end(self) -> SourceError | None:
        assert self._capture is not None
        if getattr(self._capture, "ended", True) and self.captured > 0:
            return None
        reason = getattr(self._capture, "error", None) or "no decodable frame"
        return SourceError(f"{self.label} failed after {self.captured} frames: {reason}")

    def _lost(self) -> SourceError | None:
        message = f"no frames after {self.reconnect_attempts} reconnect attempts"
        if self.end_ok and self.captured > 0:
            logger.warning("%s ended: %s", self.label, message)
            return None
        return SourceError(f"lost {self.label}: {message}")

    def _publish(self, image: np.ndarray) -> None:
        """Queue a frame: a finite source waits for room, a live one drops its oldest frame."""
        t_s = getattr(self._capture, "t_s", 0.0) if self._finite else time.monotonic() - self._t0
        with self._cond:
            while self._finite and len(self._queue) >= self.buffer_frames:
                if self._stop.is_set():
                    return
                self._cond.wait(timeout=0.5)
            if len(self._queue) >= self.buffer_frames:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append((self.captured, t_s, image))
            self.captured += 1
            self._cond.notify_all()

    def _frames(self) -> Iterator[Frame]:
        while True:
            with self._cond:
                while not self._queue and not self._done:
                    self._cond.wait(timeout=0.5)
                if not self._queue:
                    if self._error is not None:
                        raise self._error
                    return
                index, t_s, image = self._queue.popleft()
                self._cond.notify_all()  # room for a finite reader
            self.size = (image.shape[1], image.shape[0])
            yield Frame(index=index, t_s=t_s, image=image, source_id=self.source_id)
