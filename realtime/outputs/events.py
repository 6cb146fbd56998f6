"""``--events``: expression events as JSON Lines, one line per event as soon as it closes.

The sink runs the event detector (``fer_live.events``) on the same rounded probabilities the
``--jsonl`` records carry, so ``fer-live report`` finds the same events in those records. Each
line lands in one unbuffered write (``RecordFile``); when the run ends (end of the source,
Ctrl-C, SIGTERM, ``q``) ``finish`` closes the events still open and writes them before the file
is renamed into place, so the file always holds whole lines and no open event is lost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fer_live.events.detect import Event, EventDetector, EventSettings
from fer_live.outputs.base import Sink
from fer_live.outputs.records import SCHEMA_VERSION, RecordFile, face_records
from fer_live.types import FrameResult

logger = logging.getLogger(__name__)
_DIGITS = 5


def event_record(event: Event, source: str) -> dict[str, Any]:
    """One event as the JSON object ``--events`` writes (docs/records.md)."""
    return {
        "type": "event",
        "track_id": event.track_id,
        "label": event.label,
        "onset_frame": event.onset_frame,
        "onset_t_s": round(event.onset_t_s, 4),
        "apex_frame": event.apex_frame,
        "apex_t_s": round(event.apex_t_s, 4),
        "offset_frame": event.offset_frame,
        "offset_t_s": round(event.offset_t_s, 4),
        "duration_s": round(event.duration_s, 4),
        "apex_prob": round(event.apex_prob, _DIGITS),
        "mean_prob": round(event.mean_prob, _DIGITS),
        "frames": event.frames,
        "source": source,
        "schema": SCHEMA_VERSION,
    }


def record_rows(records: Sequence[dict[str, Any]], labels: Sequence[str]) -> dict[int, np.ndarray]:
    """Track id -> its probabilities (C,) in ``labels`` order, from one frame's face records.

    float32, as ``fer_live.report.read`` holds them: the same numbers in both places.
    """
    return {
        int(r["track_id"]): np.array([r["probs"][name] for name in labels], np.float32)
        for r in records
    }


class EventsSink(Sink):
    """Expression events per track (``--events``); frames without a time (stills) have none.

    Args:
        path: The JSON Lines file.
        labels: Class names in probability order.
        settings: The detector's settings (None: the defaults).
    """

    def __init__(
        self, path: Path, labels: Sequence[str], settings: EventSettings | None = None
    ) -> None:
        self.labels = tuple(labels)
        self._detector = EventDetector(self.labels, settings)
        self._source = ""
        self._untimed = False
        self._file = RecordFile(path)

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        t_s = result.frame.t_s
        if t_s is None:
            if not self._untimed:
                logger.warning("--events: still images have no time, so they have no events")
                self._untimed = True
            return
        self._source = result.frame.source_id
        rows = record_rows(face_records(result, self.labels), self.labels)
        # the time as the records round it, so the report's events equal these
        self._append(self._detector.update(result.frame.index, round(t_s, 4), rows))

    def finish(self) -> None:
        self._append(self._detector.close())
        self._file.finish()

    def commit(self) -> None:
        self._file.commit()

    def keep_partial(self) -> list[Path]:
        try:
            self._append(self._detector.close())
        finally:
            kept = self._file.keep_partial(worth_keeping=self._file.size > 0)
        return kept

    def abort(self) -> None:
        self._file.abort()

    def _append(self, events: Sequence[Event]) -> None:
        text = "".join(json.dumps(event_record(e, self._source)) + "\n" for e in events)
        self._file.append(text)
