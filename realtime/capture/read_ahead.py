"""Decode ahead on a thread: a file's next frames are ready while the pipeline works on this one.

PyAV decodes and converts with the GIL released, so on a 2-core machine a video file's decode
(about 6 ms per 1080p frame) overlaps detection, cropping and inference instead of adding to
them. Nothing is dropped: the queue is bounded and the reader waits for the consumer, frames
keep their order, and an error on the reader thread is raised in the consumer after the frames
before it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_END = object()
_POLL_S = 0.1  # how often a blocked reader checks whether it was stopped


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class ReadAhead(Generic[T]):
    """Iterate ``produce()`` on a reader thread, at most ``depth`` items ahead.

    Iterate it once; ``stop()`` (also called when the iteration ends or is abandoned) ends the
    reader and waits for it, so the caller may then release what ``produce`` reads from.

    Args:
        produce: Makes the iterator the reader thread runs.
        depth: Items queued ahead at most.
        name: The reader thread's name.
        cancel: When set, the iteration ends while it waits for an item (a stop signal must not
            wait for a slow or stuck read), as if the items had run out.
    """

    def __init__(
        self,
        produce: Callable[[], Iterator[T]],
        depth: int = 4,
        name: str = "",
        cancel: threading.Event | None = None,
    ) -> None:
        self._produce = produce
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._cancel = cancel
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name=name or "read-ahead", daemon=True)

    def __iter__(self) -> Iterator[T]:
        self._thread.start()
        try:
            while True:
                try:
                    item = self._queue.get(timeout=_POLL_S)
                except queue.Empty:
                    if self._cancel is not None and self._cancel.is_set():
                        return
                    continue
                if item is _END:
                    return
                if isinstance(item, _Raised):
                    raise item.exc
                yield item  # type: ignore[misc]
        finally:
            self.stop()

    def stop(self) -> None:
        """End the reader (it may be blocked on a full queue) and wait for it."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(_POLL_S)

    def _read(self) -> None:
        items = self._produce()
        try:
            for item in items:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put(_Raised(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def _put(self, item: object) -> bool:
        """Queue ``item`` unless stopped first; False when stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False
