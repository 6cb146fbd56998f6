"""Expression events of a records file: ``events.csv``, and counts and time per expression.

The events come from the same detector as ``fer-live --events`` (``fer_live.events``), run on
each track's records, so the report and the live file list the same events: a track's records
cover every frame it was tracked in (a track missing from a frame has ended and never returns),
and the live sink feeds the detector the rounded values the records hold. Records without
times (still images) have no events.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from rich.markup import escape
from rich.table import Table

from fer_live.events.detect import Event, EventSettings, events_of_series
from fer_live.outputs.events import event_record
from fer_live.report.read import Records

EVENTS_CSV = "events.csv"
EVENT_COUNTS_CSV = "event_counts.csv"
# events.csv: every field of an --events record but the constant ones
_COLUMNS = (
    "track_id", "label", "onset_frame", "onset_t_s", "apex_frame", "apex_t_s", "offset_frame",
    "offset_t_s", "duration_s", "apex_prob", "mean_prob", "frames", "source",
)  # fmt: skip


@dataclass(frozen=True)
class EventsOfTrack:
    """One track's events.

    Attributes:
        track_id: The tracker's id.
        source: The track's source.
        events: Its events in time order.
    """

    track_id: int
    source: str
    events: tuple[Event, ...]


def find_events(records: Records, settings: EventSettings | None = None) -> list[EventsOfTrack]:
    """Each timed track's events, in track id order (untimed tracks have none)."""
    found = []
    for track in records.tracks:
        events: list[Event] = []
        if track.timed:
            events = events_of_series(
                track.track_id, track.frame, track.t_s, track.probs, records.labels, settings
            )
        found.append(EventsOfTrack(track.track_id, track.source, tuple(events)))
    return found


def events_csv_text(tracks: Sequence[EventsOfTrack]) -> str:
    """One row per event, the fields of the ``--events`` records."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(_COLUMNS)
    for track in tracks:
        for event in track.events:
            record = event_record(event, track.source)
            writer.writerow([record[key] for key in _COLUMNS])
    return buffer.getvalue()


def event_counts(
    tracks: Sequence[EventsOfTrack], labels: Sequence[str]
) -> list[tuple[int, str, int, float]]:
    """(track id, expression, events, total seconds) for each expression a track shows."""
    rows = []
    for track in tracks:
        for label in labels:
            mine = [e for e in track.events if e.label == label]
            if mine:
                total = round(sum(e.duration_s for e in mine), 4)
                rows.append((track.track_id, label, len(mine), total))
    return rows


def counts_csv_text(tracks: Sequence[EventsOfTrack], labels: Sequence[str]) -> str:
    """``event_counts`` as CSV."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["track_id", "label", "events", "total_s"])
    writer.writerows(event_counts(tracks, labels))
    return buffer.getvalue()


def counts_table(tracks: Sequence[EventsOfTrack], labels: Sequence[str]) -> Table:
    """A rich table: per track and expression, the events and their total time."""
    table = Table(title="expression events per track", min_width=29)
    for name in ("track", "expression", "events", "total (s)"):
        table.add_column(name, justify="left" if name == "expression" else "right")
    rows = event_counts(tracks, labels)
    for track_id, label, count, total in rows:
        table.add_row(str(track_id), escape(label), str(count), f"{total:.2f}")
    if not rows:
        table.caption = "no events (no timed track held a non-neutral expression long enough)"
    return table
