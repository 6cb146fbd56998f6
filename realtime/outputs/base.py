"""The sink contract: a context manager with ``write(result, image)``; NullSink drops all.

A file sink closes in two steps, ``finish`` (flush, finalize the container) and ``commit``
(rename into place), so ``committed_together`` renames no output until every one finished, and
after an error moves them all to partial names (``keep_partial``): a failed run never replaces
the outputs of an earlier one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import NoReturn

import numpy as np

from fer_live.errors import add_note
from fer_live.types import FrameResult


@dataclass(frozen=True)
class SinkSettings:
    """What a file sink may need to know about the run when it opens (plain values).

    Attributes:
        labels: Class names, for the record sinks.
        fps: Frame rate of an output video (None: unknown, 30 is used).
        live: The source drops frames: stamp video frames with their capture times.
        still: The source is still images.
        inputs: Local files the source reads; no output may be one of them.
        audio: The video file the frames come from, whose sound an output video gets.
        hud: Draw the FPS and latency figures into annotated outputs too.
        min_confidence: Label a face ``uncertain`` below this top probability (None: off).
        face_mesh: The records carry pose and blendshapes (``--face-mesh``): CSV columns.
    """

    labels: tuple[str, ...]
    fps: float | None = None
    live: bool = False
    still: bool = False
    inputs: tuple[Path, ...] = ()
    audio: Path | None = None
    hud: bool = False
    min_confidence: float | None = None
    face_mesh: bool = False

    @property
    def one_image(self) -> bool:
        """The source is exactly one still image."""
        return self.still and len(self.inputs) == 1


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

    def finish(self) -> None:
        """Flush and release everything, leaving files under their staged names."""

    def commit(self) -> None:
        """Move the finished outputs into place (after ``finish``)."""

    def close(self) -> None:
        """Finish and commit (what was written stays partial if finishing fails); idempotent."""
        try:
            self.finish()
        except Exception:
            self.keep_partial()
            raise
        self.commit()

    def keep_partial(self) -> list[Path]:
        """After a failed run: release everything, keep what was written under partial names.

        Returns:
            The partial files kept (none when nothing worth keeping was written).
        """
        with contextlib.suppress(Exception):  # the run's own error is the one to report
            self.finish()
        return []

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


@contextlib.contextmanager
def committed_together(sinks: Sequence[Sink]) -> Iterator[Sequence[Sink]]:
    """Commit every output only when the run and every ``finish`` succeeded.

    A stop signal (KeyboardInterrupt) commits too: the user asked for what was done so far.
    Any other error keeps the outputs under partial names and notes them on the exception
    (``add_note``), so its error line says where they are.
    """
    try:
        yield sinks
    except Exception as exc:
        _keep_partial(sinks, exc)
    except BaseException:
        _finish_and_commit(sinks)
        raise
    _finish_and_commit(sinks)


def _finish_and_commit(sinks: Sequence[Sink]) -> None:
    try:
        for sink in sinks:
            sink.finish()
    except Exception as exc:
        _keep_partial(sinks, exc)
    for sink in sinks:
        sink.commit()


def _keep_partial(sinks: Sequence[Sink], exc: Exception) -> NoReturn:
    kept: list[Path] = []
    for sink in sinks:
        with contextlib.suppress(Exception):  # the first error is the one to report
            kept += sink.keep_partial()
    if kept:
        names = ", ".join(f"'{path}'" for path in kept)
        add_note(exc, f"no output was replaced; this run's partial results are in {names}")
    raise exc
