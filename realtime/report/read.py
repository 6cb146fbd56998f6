"""Read the per-face JSON Lines records that ``fer-live --jsonl`` writes, grouped by track.

The file is a user-passed input: it is streamed line by line with a cap on the line length, every
field a report needs is type-checked, and anything else is refused with one ``RecordsError``
naming the file and the line. Samples are kept in compact typed arrays per track, so memory grows
with the number of valid records only, never with a single hostile line.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from fer_live.errors import FerLiveError
from fer_live.infer.decision import UNCERTAIN
from fer_live.infer.json_checks import is_int, is_number, short

MAX_LINE_BYTES = 1 << 20
MAX_LABELS = 64
MAX_LABEL_CHARS = 64
MAX_TRACKS = 10_000
_MAX_ID = 2**62  # int64 arrays hold frame indices and track ids
_PROB_SLACK = 1e-3  # records round probabilities to 5 decimals
REQUIRED = ("frame", "t_s", "track_id", "probs", "label", "source")
# ``TrackSeries.label`` of a record labelled ``uncertain`` (--min-confidence): no class.
UNCERTAIN_INDEX = -1


class RecordsError(FerLiveError):
    """A records file cannot be read or holds a malformed record."""


@dataclass(frozen=True)
class TrackSeries:
    """One track's records in frame order.

    Attributes:
        track_id: The tracker's id.
        frame: Frame indices, (T,) int64, non-decreasing.
        t_s: Times in seconds, (T,) float64; NaN where the record had ``t_s: null``.
        probs: Class probabilities, (T, C) float32, columns in ``labels`` order.
        label: Index of each record's label in ``labels``, (T,) int16; ``UNCERTAIN_INDEX`` (-1)
            for a record labelled ``uncertain``.
        source: The source name of the track's first record.
    """

    track_id: int
    frame: np.ndarray
    t_s: np.ndarray
    probs: np.ndarray
    label: np.ndarray
    source: str

    def __post_init__(self) -> None:
        n = len(self.frame)
        for name in ("t_s", "label"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {getattr(self, name).shape}")
        if self.probs.ndim != 2 or len(self.probs) != n:
            raise ValueError(f"probs must have shape ({n}, C), got {self.probs.shape}")

    @property
    def timed(self) -> bool:
        """True when every record has a time (videos, streams); False for still images."""
        return bool(np.isfinite(self.t_s).all())


@dataclass(frozen=True)
class Records:
    """A records file grouped by track.

    Attributes:
        path: The file read.
        labels: Class names, in the order of the first record's ``probs``.
        tracks: One series per track id, sorted by id.
    """

    path: Path
    labels: tuple[str, ...]
    tracks: tuple[TrackSeries, ...]

    @property
    def timed(self) -> bool:
        """True when every record has a time, so seconds make the shared axis."""
        return all(track.timed for track in self.tracks)


@dataclass
class _Buffer:
    source: str
    frame: array = field(default_factory=lambda: array("q"))
    t_s: array = field(default_factory=lambda: array("d"))
    probs: array = field(default_factory=lambda: array("f"))
    label: array = field(default_factory=lambda: array("h"))

    def series(self, track_id: int, n_labels: int) -> TrackSeries:
        frame = np.frombuffer(self.frame, np.int64)
        order = np.argsort(frame, kind="stable")  # frame order even if lines were shuffled
        probs = np.frombuffer(self.probs, np.float32).reshape(-1, n_labels)
        return TrackSeries(
            track_id,
            frame[order],
            np.frombuffer(self.t_s, np.float64)[order],
            probs[order],
            np.frombuffer(self.label, np.int16)[order],
            self.source,
        )


def read_records(path: Path) -> Records:
    """Read a JSON Lines records file and group its records by track.

    Args:
        path: A file written by ``fer-live --jsonl``.

    Returns:
        The labels and one ``TrackSeries`` per track id.

    Raises:
        RecordsError: The file cannot be opened, holds no records, or a line is not a valid
            record (the message names the file, the line number and the problem).
    """
    path = Path(path)
    return group_records(_json_lines(path), path)


def group_records(records: Iterable[tuple[int, dict[str, Any]]], path: Path) -> Records:
    """Group numbered records (line number, record) by track, checking each one.

    Args:
        records: (line number, record) pairs, as read from a file or made in memory.
        path: What the records are called in messages and in ``Records.path``.

    Raises:
        RecordsError: No records, or one that is not a valid record.
    """
    labels: tuple[str, ...] | None = None
    buffers: dict[int, _Buffer] = {}
    for number, record in records:
        try:
            _check_fields(record)
            labels = labels or _labels(record)
            _append(buffers, record, labels)
        except ValueError as exc:
            raise RecordsError(f"'{path}' line {number}: {exc}") from None
    if labels is None:
        raise RecordsError(f"'{path}' holds no records (expected JSON Lines from fer-live --jsonl)")
    tracks = tuple(buffers[tid].series(tid, len(labels)) for tid in sorted(buffers))
    return Records(path, labels, tracks)


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, JSON object) for each non-blank line, reading at most 1 MiB a line."""
    try:
        handle: BinaryIO = open(path, "rb")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise RecordsError(f"cannot read '{path}': {exc.strerror or exc}") from None
    with handle:
        number = 0
        while True:
            number += 1
            raw = _read_line(handle, path, number)
            if not raw:
                return
            if raw.strip():
                yield number, _parse(raw, path, number)


def _read_line(handle: BinaryIO, path: Path, number: int) -> bytes:
    try:
        raw = handle.readline(MAX_LINE_BYTES + 1)
    except OSError as exc:  # a folder, or a read error on a network share
        raise RecordsError(f"cannot read '{path}': {exc.strerror or exc}") from None
    if len(raw) > MAX_LINE_BYTES:
        limit = f"{MAX_LINE_BYTES // (1 << 20)} MiB"
        raise RecordsError(f"'{path}' line {number} is longer than {limit} (not fer-live records?)")
    return raw


def _parse(raw: bytes, path: Path, number: int) -> dict[str, Any]:
    where = f"'{path}' line {number}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordsError(f"{where} is not UTF-8 text (not a JSON Lines file?)") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise RecordsError(f"{where}: JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise RecordsError(f"{where} is not JSON ({exc.msg})") from None
    except ValueError:  # an integer past Python's digit limit
        raise RecordsError(f"{where}: a number is too large") from None
    if not isinstance(value, dict):
        raise RecordsError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def _check_fields(record: dict[str, Any]) -> None:
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")


def _labels(record: dict[str, Any]) -> tuple[str, ...]:
    """The class names of the first record's ``probs`` (every later record must match)."""
    probs = record.get("probs")
    if not isinstance(probs, dict) or not probs:
        raise ValueError(
            f"'probs' must be a non-empty object of class -> probability, got {short(probs)}"
        )
    if len(probs) > MAX_LABELS:
        raise ValueError(f"'probs' has {len(probs)} classes, more than {MAX_LABELS}")
    for name in probs:
        if not name.strip() or len(name) > MAX_LABEL_CHARS or not name.isprintable():
            raise ValueError(f"class name {short(name)} is empty, too long or not printable")
    return tuple(probs)


def _append(buffers: dict[int, _Buffer], record: dict[str, Any], labels: tuple[str, ...]) -> None:
    """Check one record (whose fields are all present) and add it to its track's buffer.

    Raises:
        ValueError: A field has the wrong type or range.
    """
    frame, track_id = _index(record, "frame"), _index(record, "track_id")
    t_s = record["t_s"]
    if t_s is not None and not is_number(t_s):
        raise ValueError(f"'t_s' must be a number or null, got {short(t_s)}")
    probs = _probs(record["probs"], labels)
    label, source = record["label"], record["source"]
    if not isinstance(label, str) or (label not in labels and label != UNCERTAIN):
        raise ValueError(
            f"'label' must be one of the classes in 'probs' or '{UNCERTAIN}', got {short(label)}"
        )
    if not isinstance(source, str):
        raise ValueError(f"'source' must be a string, got {short(source)}")
    buffer = buffers.get(track_id)
    if buffer is None:
        if len(buffers) >= MAX_TRACKS:
            raise ValueError(f"more than {MAX_TRACKS} track ids")
        buffer = buffers[track_id] = _Buffer(source)
    buffer.frame.append(frame)
    buffer.t_s.append(float("nan") if t_s is None else float(t_s))
    buffer.probs.extend(probs)
    buffer.label.append(labels.index(label) if label in labels else UNCERTAIN_INDEX)


def _index(record: dict[str, Any], key: str) -> int:
    value = record[key]
    if not is_int(value) or not 0 <= value < _MAX_ID:
        raise ValueError(f"'{key}' must be a non-negative integer, got {short(value)}")
    return int(value)


def _probs(value: Any, labels: tuple[str, ...]) -> list[float]:
    if not isinstance(value, dict) or len(value) != len(labels) or set(value) != set(labels):
        keys = list(value) if isinstance(value, dict) else value
        raise ValueError(f"'probs' must have the classes {short(list(labels))}, got {short(keys)}")
    probs = [value[name] for name in labels]
    for name, p in zip(labels, probs, strict=True):
        if not is_number(p) or not -_PROB_SLACK <= p <= 1 + _PROB_SLACK:
            raise ValueError(f"probability of '{name}' must be a number in [0, 1], got {short(p)}")
    return [float(p) for p in probs]
