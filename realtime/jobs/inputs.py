"""A batch job's INPUTS, expanded once: video files, folders, globs, lists of paths and URLs.

``expand_inputs`` turns what the command was given into an ordered, de-duplicated list of
``JobInput``; each has a stable output name, unique within the job even for two files of one
name in different folders (``name_inputs``), so a rerun finds the outputs of the first run.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fer_live.errors import ConfigError

# What a folder or a glob is searched for (an input named explicitly may have any suffix).
VIDEO_SUFFIXES = (
    ".mp4", ".mov", ".mkv", ".avi", ".m4v", ".webm", ".gif", ".mpg", ".mpeg", ".wmv", ".ts",
)  # fmt: skip
# A file with one of these suffixes is a list of inputs, one a line (CSV: a column).
LIST_SUFFIXES = (".txt", ".csv", ".lst")
# Column names a CSV list may give its paths under (else its first column is read).
_LIST_COLUMNS = ("path", "source", "video", "url", "file")
# Names the job's own files take in its folder.
RESERVED_NAMES = frozenset({"job.json", "job.csv", "summary.csv", ".work", ".lock"})
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 96


@dataclass(frozen=True)
class JobInput:
    """One input of a job.

    Attributes:
        source: What the pipeline opens (``--source``): the path as given or found, or a URL.
        key: Its identity: the resolved absolute path, or the URL.
        name: Its output folder in the job's folder, and the stem of its output files.
    """

    source: str
    key: str
    name: str


def is_url(text: str) -> bool:
    return bool(_URL.match(text))


def input_key(source: str) -> str:
    """The resolved absolute path of a local source (symlinks followed), or the URL itself."""
    return source if is_url(source) else str(Path(source).resolve())


def expand_inputs(args: Sequence[str], names: Mapping[str, str] | None = None) -> list[JobInput]:
    """Expand INPUTS in order: files as given, folders and globs to the videos they hold (sorted),
    lists to their lines; an input met twice is kept once (the first time).

    A path that does not exist stays an input (the job reports it failed), unless it looks like
    a glob.

    Args:
        args: The command's INPUTS.
        names: Output names an earlier run gave (key -> name); they are kept.

    Raises:
        ConfigError: No inputs, a folder or glob without videos, or an unreadable list.
    """
    sources: list[str] = []
    for arg in args:
        sources += _expand_one(arg)
    seen: dict[str, str] = {}
    for source in sources:
        seen.setdefault(input_key(source), source)
    if not seen:
        raise ConfigError("no inputs: give video files, folders, globs or a list of paths")
    return name_inputs([(source, key) for key, source in seen.items()], names or {})


def _expand_one(arg: str) -> list[str]:
    if not arg.strip():
        raise ConfigError("an empty input was given")
    if is_url(arg):
        return [arg]
    path = Path(arg)
    if path.is_dir():
        found = _videos(str(p) for p in path.rglob("*"))
        if not found:
            raise ConfigError(
                f"no videos in folder '{arg}' (looked for {', '.join(VIDEO_SUFFIXES)})"
            )
        return found
    if any(ch in arg for ch in "*?[") and not path.exists():
        found = _videos(glob.glob(arg, recursive=True))
        if not found:
            raise ConfigError(f"no videos match '{arg}'")
        return found
    if path.suffix.lower() in LIST_SUFFIXES and path.is_file():
        return _read_list(path)
    return [arg]


def _videos(paths: Iterable[str]) -> list[str]:
    return sorted(
        p for p in paths if Path(p).suffix.lower() in VIDEO_SUFFIXES and Path(p).is_file()
    )


def _read_list(path: Path) -> list[str]:
    """The entries of a list file; relative paths are taken from the list's folder."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"cannot read the input list '{path}': {reason}") from None
    entries = _csv_entries(text) if path.suffix.lower() == ".csv" else text.splitlines()
    out = []
    for entry in (e.strip() for e in entries):
        if not entry or entry.startswith("#"):
            continue
        relative = not is_url(entry) and not Path(entry).is_absolute()
        out.append(str(path.parent / entry) if relative else entry)
    if not out:
        raise ConfigError(f"the input list '{path}' names no inputs")
    return out


def _csv_entries(text: str) -> list[str]:
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    column = next((header.index(n) for n in _LIST_COLUMNS if n in header), None)
    if column is None:
        return [row[0] for row in rows]
    return [row[column] for row in rows[1:] if len(row) > column]


def name_inputs(inputs: Sequence[tuple[str, str]], earlier: Mapping[str, str]) -> list[JobInput]:
    """Give each (source, key) an output name: its file's stem, made safe for a file name;
    when two inputs share a stem, each gets a short digest of its key too. Names an earlier run
    gave are kept.
    """
    stems = [_safe_stem(source) for source, _ in inputs]
    shared = {stem for stem in stems if stems.count(stem) > 1} | RESERVED_NAMES
    taken = set(earlier.values())
    out = []
    for (source, key), stem in zip(inputs, stems, strict=True):
        name = earlier.get(key)
        if name is None:
            name = stem if stem not in shared and stem not in taken else _with_digest(stem, key)
            taken.add(name)
        out.append(JobInput(source, key, name))
    return out


def _with_digest(stem: str, key: str) -> str:
    return f"{stem}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def _safe_stem(source: str) -> str:
    if is_url(source):
        parts = urlsplit(source)
        tail = Path(parts.path).stem or parts.hostname or "stream"
    else:
        tail = Path(source).stem
    name = _UNSAFE.sub("_", tail).lstrip(".")[:_MAX_NAME]
    return name or "input"
