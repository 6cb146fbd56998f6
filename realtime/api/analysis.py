"""``analyze``: a whole video (or stream, or folder) into its records and per-track summaries."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fer_live.api.events import ExpressionEvents
from fer_live.api.recognizer import Recognizer
from fer_live.api.results import FrameResult
from fer_live.errors import FerLiveError
from fer_live.events.detect import Event
from fer_live.outputs.records import csv_header, csv_row
from fer_live.report.read import group_records
from fer_live.report.summary import TrackSummary, summarize_all

if TYPE_CHECKING:
    import pandas


@dataclass(frozen=True)
class Analysis:
    """What ``analyze`` found.

    Attributes:
        source: The source analysed.
        labels: Class names, in probability order.
        frames: One ``FrameResult`` per frame (without images).
    """

    source: str
    labels: tuple[str, ...]
    frames: tuple[FrameResult, ...]

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every face record, as ``fer-live --jsonl`` writes them (one dict per line)."""
        return [record for frame in self.frames for record in frame.records()]

    @property
    def events(self) -> list[Event]:
        """The expression events of every track, in the order they closed (as
        ``fer-live --events`` writes them; empty for still images)."""
        detector = ExpressionEvents(self.labels)
        found = [event for frame in self.frames for event in detector.update(frame)]
        return found + detector.close()

    def summary(self) -> list[TrackSummary]:
        """Per-track summaries, as ``fer-live report`` computes them (empty without faces)."""
        records = self.records
        if not records:
            return []
        grouped = group_records(enumerate(records, start=1), Path(self.source))
        return summarize_all(grouped)

    def to_pandas(self) -> pandas.DataFrame:
        """The records as a DataFrame with the CSV's columns (``x0``..``y1``, ``p_<label>``; with
        the face mesh ``yaw``, ``pitch``, ``roll`` and ``bs_<name>``).

        Raises:
            FerLiveError: pandas is not installed (``pip install "fer-live[pandas]"``).
        """
        try:
            import pandas as pd
        except ImportError:
            raise FerLiveError(
                'to_pandas needs pandas, which is not installed: pip install "fer-live[pandas]"'
            ) from None
        records = self.records
        mesh = any("pose" in r for r in records)  # the face mesh ran
        rows = [csv_row(r, self.labels, mesh) for r in records]
        return pd.DataFrame(rows, columns=csv_header(self.labels, mesh))


def analyze(
    source: str | int | Path,
    *,
    max_frames: int | None = None,
    recognizer: Recognizer | None = None,
    **settings: Any,
) -> Analysis:
    """Run the recognizer over a whole source and keep what it found.

    Args:
        source: A video file, URL, camera index, image folder or glob.
        max_frames: Stop after this many frames.
        recognizer: A loaded ``Recognizer`` to reuse (for many videos); else one is made from
            ``settings`` and closed at the end.
        **settings: ``Recognizer`` arguments (``model``, ``device``, ``smooth``, ...).

    Raises:
        SourceError, ModelError, ConfigError, BackendUnavailable: as ``Recognizer`` and
            ``Recognizer.stream``.
    """
    if recognizer is not None:
        if settings:
            raise TypeError("pass either a recognizer or its settings, not both")
        return _analyze(recognizer, source, max_frames)
    with Recognizer(**settings) as owned:
        return _analyze(owned, source, max_frames)


def _analyze(rec: Recognizer, source: str | int | Path, max_frames: int | None) -> Analysis:
    frames = tuple(rec.stream(source, max_frames=max_frames))
    return Analysis(str(source), rec.labels, frames)
