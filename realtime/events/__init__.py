"""Expression events: stretches of one track's smoothed stream where one non-neutral expression
holds, with onset, apex and offset (``detect``: ``Event``, ``EventSettings``, ``EventDetector``).

Comes after ``smooth`` (it reads the smoothed probabilities) and before ``outputs`` (the
``--events`` sink), ``report`` (``events.csv``) and ``api`` (``Analysis.events``), which all run
the same detector so their events agree. Imports the shared modules only.
"""

from fer_live.events.detect import Event, EventDetector, EventSettings, TrackEvents

__all__ = ["Event", "EventDetector", "EventSettings", "TrackEvents"]
