"""Exceptions that the CLI turns into one clear line and a non-zero exit."""

from __future__ import annotations

import errno
import stat
from pathlib import Path

# what a path is, for the stat modes that are not a regular file
_KINDS = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


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


def not_a_file(path: Path) -> str:
    """Why ``path`` is not a file to read, in words: ``no such file``, ``a folder, not a file``,
    ``not a regular file (a character device)``, or the OS's reason (``Permission denied``)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        missing = exc.errno in (errno.ENOENT, errno.ENOTDIR)
        return "no such file" if missing else str(exc.strerror or exc)
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    kind = next((what for test, what in _KINDS if test(mode)), "")
    return f"not a regular file ({kind})" if kind else "not a regular file"
