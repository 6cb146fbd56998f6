"""Exceptions that the CLI turns into one clear line and a non-zero exit."""

from __future__ import annotations


class FerLiveError(Exception):
    """Base class for every error fer-live reports to the user."""


class SourceError(FerLiveError):
    """A camera, video, stream, image or folder cannot be opened or read."""


class ModelError(FerLiveError):
    """A model file or its model card is missing, broken or mismatched."""


class ConfigError(FerLiveError, ValueError):
    """A configuration value or flag is out of range."""


class BackendUnavailable(FerLiveError, ImportError):
    """An inference backend's package or device is not available here."""


def first_line(exc: BaseException | str) -> str:
    """The first line of an exception's (or a native log's) message; natives append traces."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def add_note(exc: BaseException, note: str) -> None:
    """Attach ``note`` to ``exc`` (``BaseException.add_note`` from Python 3.11, also on 3.10).

    The CLI joins the notes to the error line; 3.11's tracebacks print them too.
    """
    adder = getattr(exc, "add_note", None)
    if adder is not None:
        adder(note)
    else:
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]
