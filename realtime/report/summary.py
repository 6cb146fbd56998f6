"""Per-track summaries of a records file: duration, share of time per expression, changes.

``summarize`` turns one ``TrackSeries`` into a ``TrackSummary``; ``summary_table`` and
``shares_table`` render them for the terminal and ``write_summaries`` saves the same numbers as
CSV and JSON, so the three views can never disagree.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich import box
from rich.markup import escape
from rich.table import Table

from fer_live.errors import FerLiveError
from fer_live.infer.decision import UNCERTAIN
from fer_live.report.read import Records, TrackSeries

SUMMARY_CSV = "summary.csv"
SUMMARY_JSON = "summary.json"
_DIGITS = 6


@dataclass(frozen=True)
class TrackSummary:
    """What a video analyst wants to know about one face track.

    Attributes:
        track_id: The tracker's id.
        source: Where the track's first record came from.
        first_frame: Frame index of the first record.
        last_frame: Frame index of the last record.
        first_t_s: Time of the first record in seconds; None for still images.
        last_t_s: Time of the last record in seconds; None for still images.
        duration: ``last_t_s - first_t_s`` in seconds, or ``last_frame - first_frame`` when the
            records have no times (then ``duration_unit`` is ``"frames"``).
        duration_unit: ``"s"`` or ``"frames"``.
        records: Number of records (frames the face was predicted in).
        shares: Fraction of the records whose label is each class; with ``uncertain`` it
            sums to 1.
        dominant: The class with the largest share (the first one on a tie); ``uncertain``
            when every record is.
        changes: How often the label differs from the previous record's label, counted over
            the records with a class (an uncertain stretch between two equal labels is none).
        uncertain: Fraction of the records labelled ``uncertain`` (``--min-confidence``): its
            own label, not an expression; 0 without the flag.
    """

    track_id: int
    source: str
    first_frame: int
    last_frame: int
    first_t_s: float | None
    last_t_s: float | None
    duration: float
    duration_unit: str
    records: int
    shares: dict[str, float]
    dominant: str
    changes: int
    uncertain: float = 0.0


def summarize(track: TrackSeries, labels: Sequence[str], timed: bool) -> TrackSummary:
    """Summarize one track.

    Args:
        track: The track's records in frame order.
        labels: Class names in probability order.
        timed: Measure durations in seconds (else in frames).

    Returns:
        The track's summary.
    """
    answered = track.label[track.label >= 0]  # uncertain records (-1) name no class
    counts = np.bincount(answered, minlength=len(labels))
    shares = counts / len(track.label)
    first_t, last_t = (_time(track.t_s[i]) for i in (0, -1))
    first_f, last_f = int(track.frame[0]), int(track.frame[-1])
    if timed and first_t is not None and last_t is not None:
        duration, unit = round(last_t - first_t, 4), "s"
    else:
        duration, unit = float(last_f - first_f), "frames"
    return TrackSummary(
        track_id=track.track_id,
        source=track.source,
        first_frame=first_f,
        last_frame=last_f,
        first_t_s=first_t,
        last_t_s=last_t,
        duration=duration,
        duration_unit=unit,
        records=len(track.frame),
        shares={name: round(float(s), _DIGITS) for name, s in zip(labels, shares, strict=True)},
        dominant=labels[int(np.argmax(counts))] if len(answered) else UNCERTAIN,
        changes=int(np.count_nonzero(np.diff(answered))),
        uncertain=round(1.0 - len(answered) / len(track.label), _DIGITS),
    )


def summarize_all(records: Records) -> list[TrackSummary]:
    """One summary per track, in track id order, on one time unit for the whole file."""
    return [summarize(track, records.labels, records.timed) for track in records.tracks]


def _time(value: float) -> float | None:
    return round(float(value), 4) if np.isfinite(value) else None


SHARES_TITLE = "share of records per expression (%)"


def summary_table(summaries: Sequence[TrackSummary], title: str) -> Table:
    """A rich table: one row per track (span, length, records, dominant class, changes)."""
    unit = summaries[0].duration_unit if summaries else "s"
    table = _table(title)
    for name in ("track", "frames", "time (s)", f"length ({unit})", "records"):
        table.add_column(name, justify="right")
    table.add_column("dominant")
    table.add_column("changes", justify="right")
    for s in summaries:
        duration = f"{s.duration:.2f}" if s.duration_unit == "s" else f"{s.duration:.0f}"
        table.add_row(
            str(s.track_id),
            f"{s.first_frame}-{s.last_frame}",
            f"{_seconds(s.first_t_s)}-{_seconds(s.last_t_s)}",
            duration,
            str(s.records),
            escape(s.dominant),
            str(s.changes),
        )
    return table


def shares_table(summaries: Sequence[TrackSummary], labels: Sequence[str]) -> Table:
    """A rich table: one row per track, one percent column per class that any track shows.

    A second table rather than more columns: eight classes beside the summary overflow 80
    columns. Classes no track shows are left out here (the CSV and JSON keep them); an
    ``uncertain`` column follows when some record is labelled so.
    """
    seen = [name for name in labels if any(s.shares[name] > 0 for s in summaries)]
    uncertain = any(s.uncertain > 0 for s in summaries)  # its own column, after the classes
    table = _table(SHARES_TITLE)
    table.add_column("track", justify="right")
    for name in seen:
        table.add_column(escape(name), justify="right")
    if uncertain:
        table.add_column(UNCERTAIN, justify="right", style="dim")
    for s in summaries:
        cells = [f"{100 * s.shares[name]:.1f}" for name in seen]
        cells += [f"{100 * s.uncertain:.1f}"] if uncertain else []
        table.add_row(str(s.track_id), *cells)
    if len(seen) < len(labels):
        table.caption = escape(f"never shown: {', '.join(n for n in labels if n not in seen)}")
    return table


def _table(title: str) -> Table:
    # light borders and collapsed padding keep the tables readable in 80 columns; the minimum
    # width keeps the title on one line above a narrow table
    return Table(
        title=escape(title),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        min_width=len(title),
    )


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


def csv_text(summaries: Sequence[TrackSummary], labels: Sequence[str]) -> str:
    """The summaries as CSV: fixed columns, then ``share_<class>`` per class."""
    fixed = [k for k in TrackSummary.__dataclass_fields__ if k != "shares"]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(fixed + [f"share_{name}" for name in labels])
    for s in summaries:
        row = asdict(s)
        writer.writerow([_cell(row[k]) for k in fixed] + [s.shares[name] for name in labels])
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    return "" if value is None else value


def json_text(records: Records, summaries: Sequence[TrackSummary]) -> str:
    """The summaries as one JSON document, with the labels and the records file named."""
    document = {
        "records": str(records.path),
        "labels": list(records.labels),
        "duration_unit": summaries[0].duration_unit if summaries else "s",
        "tracks": [asdict(s) for s in summaries],
    }
    return json.dumps(document, indent=2) + "\n"


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``; an OS failure becomes one ``FerLiveError`` line."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise FerLiveError(f"cannot write '{path}': {exc.strerror or exc}") from None
    return path


def write_summaries(
    records: Records, summaries: Sequence[TrackSummary], out_dir: Path
) -> list[Path]:
    """Write ``summary.csv`` and ``summary.json`` into ``out_dir``; returns their paths."""
    return [
        write_text(out_dir / SUMMARY_CSV, csv_text(summaries, records.labels)),
        write_text(out_dir / SUMMARY_JSON, json_text(records, summaries)),
    ]


def source_name(sources: Sequence[str]) -> str:
    """A short name for titles: the file name of the one source, or a count of sources."""
    unique = sorted(set(sources))
    if len(unique) == 1:
        return Path(unique[0]).name or unique[0]
    return f"{len(unique)} sources"
