"""The one table of face detectors: what ``--detector`` accepts, its help, and how each opens.

Adding a detector is one ``DetectorEntry`` in ``DETECTORS`` plus its class, which follows
``TilingDetector``: ``detect(frame, tiles)`` finds the faces of a frame searched whole and, for
``tiles`` >= 2, on that many overlapping tiles across its longer side too; ``close()`` releases
it. Which tiles a frame gets and which frames are searched is chosen for every detector alike
(``fer_live.detect.plan``, ``fer_live.infer.still``). The openers import their detector when
called, so the flag is checked and its help written without loading MediaPipe.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol

from fer_live.errors import ConfigError
from fer_live.types import FaceBoxes, Frame


class TilingDetector(Protocol):
    """A face detector the pipeline runs: whole frames, or tiled ones for small faces."""

    def detect(self, frame: Frame, tiles: int | None = None) -> FaceBoxes:
        """The faces of ``frame``, best first; ``tiles`` None or 1 searches it whole only."""
        ...

    def close(self) -> None:
        """Release what the detector holds (models, native graphs)."""
        ...


class DetectorOpener(Protocol):
    """What ``open_detector`` calls: builds a detector from the run's settings."""

    def __call__(self, *, min_score: float, max_faces: int, stills: bool) -> TilingDetector:
        """Args: the ``--min-score`` and ``--max-faces`` values, and whether the frames are
        unrelated still images (searched once each, so a closer look may cost more)."""
        ...


@dataclass(frozen=True)
class DetectorEntry:
    """One face detector.

    Attributes:
        name: The ``--detector`` value.
        open: Builds the detector (imports it only then).
        help: A few words for ``--detector``'s help.
    """

    name: str
    open: DetectorOpener
    help: str


def open_blazeface(model: str, *, min_score: float, max_faces: int, stills: bool) -> TilingDetector:
    """MediaPipe's BlazeFace (``model``: ``short`` or ``full`` range), weak tile hits rechecked
    (every one in stills, where the closer look frames the face better)."""
    from fer_live.detect.mediapipe import MediapipeDetector

    return MediapipeDetector(
        min_score=min_score,
        max_faces=max_faces,
        model=model,
        recheck=True,
        recheck_covered=stills,
    )


# Order is the order of the ``--detector`` choices in its help and errors.
DETECTORS: dict[str, DetectorEntry] = {
    "short": DetectorEntry(
        "short", functools.partial(open_blazeface, "short"), "BlazeFace short range"
    ),
    "full": DetectorEntry(
        "full", functools.partial(open_blazeface, "full"), "BlazeFace full range"
    ),
}


def detector_entry(name: str) -> DetectorEntry:
    """The table's entry for a ``--detector`` value.

    Raises:
        ConfigError: No detector of that name (the message lists them).
    """
    entry = DETECTORS.get(name)
    if entry is None:
        raise ConfigError(f"--detector must be one of {', '.join(DETECTORS)}, got {name!r}")
    return entry


def open_detector(name: str, *, min_score: float, max_faces: int, stills: bool) -> TilingDetector:
    """Build the detector ``--detector`` names; the caller closes it.

    Raises:
        ConfigError: Unknown name, or a setting the detector refuses.
        ModelError: The detector's model is missing or broken.
        BackendUnavailable: Its package is not installed.
    """
    opener = detector_entry(name).open
    return opener(min_score=min_score, max_faces=max_faces, stills=stills)


def detector_help() -> str:
    """The ``--detector`` help text."""
    choices = ", ".join(f"{entry.name} ({entry.help})" for entry in DETECTORS.values())
    return f"Face detector: {choices}."
