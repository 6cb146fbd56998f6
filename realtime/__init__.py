"""fer-live: real-time facial expression recognition.

The public API, loaded on first use so that ``fer-live --help`` stays fast::

    import fer_live

    with fer_live.Recognizer() as rec:
        faces = rec.predict("photo.jpg")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from fer_live.api.analysis import Analysis, analyze
    from fer_live.api.events import ExpressionEvents
    from fer_live.api.recognizer import Recognizer
    from fer_live.api.results import Face, FrameResult
    from fer_live.errors import (
        BackendUnavailable,
        ConfigError,
        FerLiveError,
        ModelError,
        SourceError,
    )
    from fer_live.events.detect import Event, EventSettings
    from fer_live.report.read import RecordsError
    from fer_live.report.summary import TrackSummary
    from fer_live.types import FacePose

# public name -> the module that defines it
_EXPORTS = {
    "Recognizer": "fer_live.api.recognizer",
    "analyze": "fer_live.api.analysis",
    "Analysis": "fer_live.api.analysis",
    "Face": "fer_live.api.results",
    "Event": "fer_live.events.detect",
    "EventSettings": "fer_live.events.detect",
    "ExpressionEvents": "fer_live.api.events",
    "FacePose": "fer_live.types",
    "FrameResult": "fer_live.api.results",
    "TrackSummary": "fer_live.report.summary",
    "FerLiveError": "fer_live.errors",
    "ConfigError": "fer_live.errors",
    "ModelError": "fer_live.errors",
    "SourceError": "fer_live.errors",
    "BackendUnavailable": "fer_live.errors",
    "RecordsError": "fer_live.report.read",
}

__all__ = [
    "Analysis",
    "BackendUnavailable",
    "ConfigError",
    "Event",
    "EventSettings",
    "ExpressionEvents",
    "Face",
    "FacePose",
    "FerLiveError",
    "FrameResult",
    "ModelError",
    "Recognizer",
    "RecordsError",
    "SourceError",
    "TrackSummary",
    "__version__",
    "analyze",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fer_live' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
