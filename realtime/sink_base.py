"""The sink contract: a context manager with ``write(result, image)``; NullSink drops all."""

from __future__ import annotations

from types import TracebackType

import numpy as np

from realtime.types import FrameResult


class Sink:
    """Base sink: context manager; ``stop_requested`` becomes True when the user asks to quit.

    ``hud``: the image this sink gets carries the FPS and latency figures (a window shows them;
    files leave them out unless asked, as they vary with the machine and its load).
    """

    needs_image = False
    stop_requested = False
    hud = False

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        """Consume one processed frame (and its overlay when ``needs_image``)."""

    def close(self) -> None:
        """Flush and release everything; safe to call twice."""

    def abort(self) -> None:
        """Release everything and leave no output behind (the run never started)."""
        self.close()

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class NullSink(Sink):
    """Discards everything (benchmarks, dry runs)."""
