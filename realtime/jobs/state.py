"""A job's record in its folder: one manifest per finished input, ``job.json`` and ``job.csv``.

An input is done when its folder ``DIR/<name>/`` holds a ``manifest.json`` whose files exist
with the sizes and SHA-256 digests it lists, made with the job's settings from the same input
file (``verify_done``): checked on every run, never assumed. The folder and its manifest are
renamed into place together (``fer_live.jobs.work``), so a killed job leaves either a whole
input or none. ``job.json`` and ``job.csv`` add what failed and why; they are written under a
temporary name and renamed (``write_atomic``), so a reader never sees half of one.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from fer_live.errors import FerLiveError

logger = logging.getLogger(__name__)

JOB_JSON = "job.json"
JOB_CSV = "job.csv"
MANIFEST = "manifest.json"
SCHEMA = 1
# An input's status in job.json: done in this run, done earlier (checked), failed, or not yet.
DONE, SKIPPED, FAILED, PENDING = "done", "skipped", "failed", "pending"
COMPLETE = (DONE, SKIPPED)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileDigest:
    """Size and SHA-256 of one output file."""

    size: int
    sha256: str


@dataclass(frozen=True)
class InputResult:
    """What one input gave.

    Attributes:
        name: Its output name (``JobInput.name``).
        source: What was opened.
        status: ``done``, ``skipped``, ``failed`` or ``pending`` (interrupted, or not reached).
        frames: Frames processed.
        faces: Face records written (one per face per frame).
        tracks: Distinct face tracks.
        duration_s: Length of the video processed, in seconds of video (frames / its rate).
        wall_s: Processing time, in seconds.
        fps: Frames processed per second of ``wall_s``.
        error: The one-line reason of a failure ('' otherwise).
        files: Output file name (in the input's folder) -> its digest.
        fingerprint: The job settings it was made with (``settings_fingerprint``).
        input_id: The input file's size and modification time when it was read ('' for URLs).
    """

    name: str
    source: str
    status: str
    frames: int = 0
    faces: int = 0
    tracks: int = 0
    duration_s: float = 0.0
    wall_s: float = 0.0
    fps: float = 0.0
    error: str = ""
    files: dict[str, FileDigest] = field(default_factory=dict)
    fingerprint: str = ""
    input_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InputResult:
        """Raises: KeyError, TypeError or ValueError on a malformed document."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["files"] = {k: FileDigest(**v) for k, v in dict(values.get("files", {})).items()}
        return cls(**values)


def file_digest(path: Path) -> FileDigest:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return FileDigest(path.stat().st_size, digest.hexdigest())


def input_id(source: str) -> str:
    """``<size>:<mtime_ns>`` of a local input file ('' for a URL or a missing file): a changed
    input is processed again."""
    try:
        st = Path(source).stat()
    except (OSError, ValueError):
        return ""
    return f"{st.st_size}:{st.st_mtime_ns}"


def settings_fingerprint(settings: Mapping[str, Any]) -> str:
    """A short digest of the settings that shape an input's outputs."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# write_atomic's temporary name: .<name>.<pid>.tmp
_TEMP_NAME = re.compile(r"\..+\.\d+\.tmp")


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, flush it to disk and rename it.

    Raises:
        FerLiveError: The folder is not writable (the message names the file).
    """
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise FerLiveError(f"cannot write '{path}': {exc.strerror or exc}") from None


def remove_stale_temps(folder: Path) -> int:
    """Remove the temporary files of ``write_atomic`` that a killed job left in ``folder``.

    Call it only while holding the job's lock: then no live job is writing one.
    """
    stale = [p for p in folder.glob(".*.tmp") if _TEMP_NAME.fullmatch(p.name)]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def read_manifest(folder: Path) -> InputResult | None:
    """The manifest in an input's folder, or None when there is none or it is unreadable."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return InputResult.from_json(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def verify_done(folder: Path, fingerprint: str, source: str) -> tuple[InputResult | None, str]:
    """Whether an input's folder holds its finished outputs: (its result, '') or (None, why not).

    Checks the manifest, the settings, the input file, and each output's size and SHA-256.
    """
    result = read_manifest(folder)
    if result is None:
        return None, "no manifest" if folder.exists() else ""
    if result.fingerprint != fingerprint:
        return None, "made with other settings"
    if result.input_id != input_id(source):
        return None, "the input file changed"
    for name, expected in result.files.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != expected.size:
            return None, f"{name} is missing or has another size"
        if file_digest(path).sha256 != expected.sha256:
            return None, f"{name} does not match its digest"
    return result, ""


def load_job(folder: Path) -> dict[str, dict[str, Any]]:
    """The inputs of the folder's ``job.json`` by key ({} when there is none or it is broken)."""
    try:
        document = json.loads((folder / JOB_JSON).read_text(encoding="utf-8"))
        return {row["key"]: row for row in document["inputs"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


_CSV_COLUMNS = (
    "name", "source", "status", "frames", "faces", "tracks", "duration_s", "wall_s", "fps",
    "error",
)  # fmt: skip


def job_rows(results: Sequence[tuple[str, InputResult]]) -> list[dict[str, Any]]:
    """``job.json``'s rows: (key, result) -> the columns of ``job.csv`` and the key."""
    rows = []
    for key, result in results:
        row = {column: getattr(result, column) for column in _CSV_COLUMNS}
        row["duration_s"] = round(result.duration_s, 3)
        row["wall_s"] = round(result.wall_s, 3)
        row["fps"] = round(result.fps, 2)
        rows.append({**row, "key": key})
    return rows


def counts(results: Sequence[InputResult]) -> dict[str, int]:
    statuses = [r.status for r in results]
    return {s: statuses.count(s) for s in (DONE, SKIPPED, FAILED, PENDING)}


def write_job(
    folder: Path, results: Sequence[tuple[str, InputResult]], settings: Mapping[str, Any]
) -> None:
    """Write ``job.json`` and ``job.csv`` (each atomically).

    Raises:
        FerLiveError: The job folder is not writable.
    """
    rows = job_rows(results)
    document = {
        "schema": SCHEMA,
        "settings": dict(settings),
        "counts": counts([r for _, r in results]),
        "inputs": rows,
    }
    write_atomic(folder / JOB_JSON, json.dumps(document, indent=2, default=str) + "\n")
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(_CSV_COLUMNS), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(folder / JOB_CSV, buffer.getvalue())
