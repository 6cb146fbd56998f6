"""``ExpressionEvents``: the expression events of a stream of API results, as they close.

The same detector as ``fer-live --events`` (``fer_live.events``), fed the same rounded numbers
(the API's faces are the CLI's records), so both list the same events for one source.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fer_live.api.results import FrameResult
from fer_live.events.detect import Event, EventDetector, EventSettings


class ExpressionEvents:
    """Expression events of every track of a stream of results, each as soon as it closes.

    Args:
        labels: Class names, in probability order (``Recognizer.labels``).
        settings: Hysteresis and minimum duration (None: the defaults, docs/events.md).

    Example:
        >>> events = ExpressionEvents(rec.labels)  # doctest: +SKIP
        >>> for result in rec.stream("clip.mp4"):  # doctest: +SKIP
        ...     for event in events.update(result):
        ...         print(event.label, event.onset_t_s, event.duration_s)
        >>> closed_at_the_end = events.close()  # doctest: +SKIP
    """

    def __init__(self, labels: Sequence[str], settings: EventSettings | None = None) -> None:
        self.labels = tuple(labels)
        self._detector = EventDetector(self.labels, settings)

    def update(self, result: FrameResult) -> list[Event]:
        """The events this frame closed (tracks missing from it have ended). A result without
        a time (a still image) has no events."""
        if result.t_s is None:
            return []
        rows = {
            face.track_id: np.array([face.probs[name] for name in self.labels], np.float32)
            for face in result.faces
        }
        return self._detector.update(result.frame, result.t_s, rows)

    def close(self) -> list[Event]:
        """End of the stream: the events still open, closed at their last frame."""
        return self._detector.close()
