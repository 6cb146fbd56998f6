"""Per-face records (JSON Lines, CSV) in files that only ever hold whole lines.

Each frame's records are appended in one write; if the write fails (``ENOSPC``, a broken
network share) the file is cut back to the end of the previous frame, so a reader never meets
a half line, and the caller gets one ``FerLiveError`` naming the file and the reason.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from fer_live.errors import FerLiveError
from fer_live.infer.decision import CONFIDENCE_DIGITS, decide_label
from fer_live.mesh.faces import BLENDSHAPES
from fer_live.outputs.base import Sink
from fer_live.outputs.staged import StagedFile
from fer_live.types import FaceMesh, FrameResult


def is_special_file(path: Path) -> bool:
    """An existing path that is not a regular file: ``/dev/stdout``, ``/dev/full``, a FIFO.

    Such outputs are written in place: staging beside them would write into ``/dev`` and then
    rename a regular file over the device.
    """
    return path.exists() and not path.is_file()


class RecordFile:
    """Appends text chunks to ``path`` (staged under a hidden name unless it is a device).

    Args:
        path: The output path the user named.

    Raises:
        FerLiveError: The file cannot be created.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._staged = None if is_special_file(self.path) else StagedFile(self.path)
        target = self.path if self._staged is None else self._staged.temp
        self._size = 0
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # unbuffered: a chunk is on disk (or refused) when append returns, never half-held
            self._file: BinaryIO | None = open(target, "wb", buffering=0)  # noqa: SIM115
        except OSError as exc:
            raise FerLiveError(f"cannot write '{self.path}': {exc.strerror}") from None

    def append(self, text: str) -> None:
        """Write ``text`` whole, or cut the file back to where it was and raise.

        Raises:
            FerLiveError: The write failed (the message ends with the system's reason).
        """
        if self._file is None or not text:
            return
        raw = text.encode("utf-8")
        data = memoryview(raw)
        try:
            while data:
                written = self._file.write(data)
                if not written:  # nothing taken and no error: treat as a full device
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                data = data[written:]
        except OSError as exc:
            with contextlib.suppress(OSError):  # devices such as /dev/full cannot be truncated
                self._file.truncate(self._size)
            raise FerLiveError(f"cannot write '{self.path}': {exc.strerror}") from None
        self._size += len(raw)

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    def finish(self) -> None:
        """Close the file, still under its staged name (safe to call twice)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def commit(self) -> None:
        """Move the finished file into place."""
        if self._staged is not None:
            self._staged.commit()

    def close(self) -> None:
        """Close and move the file into place (safe to call twice)."""
        self.finish()
        self.commit()

    def keep_partial(self, worth_keeping: bool) -> list[Path]:
        """Close; keep the file as ``<stem>.partial<suffix>`` if ``worth_keeping``, else remove it.

        Returns:
            The partial file, when one was kept (a device written in place is never moved).
        """
        self.finish()
        if self._staged is None:
            return []
        kept = self._staged.keep_partial() if worth_keeping else None
        self._staged.discard()
        return [] if kept is None else [kept]

    def abort(self) -> None:
        """Close and leave no file behind (the run never started)."""
        self.finish()
        if self._staged is not None:
            self._staged.discard()


# Version of the record fields below; it changes when a field is renamed, removed or changes
# meaning (new fields may appear without it). docs/records.md describes each version.
SCHEMA_VERSION = 1


def face_records(
    result: FrameResult, labels: Sequence[str], min_confidence: float | None = None
) -> list[dict[str, Any]]:
    """One record per predicted face: frame, time, track id, box, score, probs, label, source;
    with the face mesh (``result.mesh`` not None) also ``pose`` and ``blendshapes``.

    Args:
        result: A processed frame.
        labels: Class names in probability order.
        min_confidence: Below this top probability the label is ``uncertain`` (the
            probabilities are written all the same); None: always the top class.

    Returns:
        JSON-ready dicts, in the order of ``result.predictions``.
    """
    rows = {int(t): i for i, t in enumerate(result.tracks.track_id)}
    records = []
    for tid, probs in zip(result.predictions.track_id, result.predictions.probs, strict=True):
        row = rows.get(int(tid))
        if row is None:
            continue
        label, confidence = decide_label(probs, labels, min_confidence)
        rounded = np.round(probs.astype(float), CONFIDENCE_DIGITS).tolist()
        records.append(
            {
                "frame": result.frame.index,
                "t_s": None if result.frame.t_s is None else round(result.frame.t_s, 4),
                "track_id": int(tid),
                "box": [round(float(v), 1) for v in result.tracks.xyxy[row]],
                "score": round(float(result.tracks.score[row]), 4),
                "probs": dict(zip(labels, rounded, strict=True)),
                "label": label,
                "confidence": confidence,
                **({} if result.mesh is None else mesh_fields(result.mesh.get(int(tid)))),
                "source": result.frame.source_id,
                "box_source": result.box_source,
                "schema": SCHEMA_VERSION,
            }
        )
    return records


def mesh_fields(mesh: FaceMesh | None) -> dict[str, Any]:
    """A face's ``pose`` (degrees, 2 decimals) and ``blendshapes`` (5 decimals): both None where
    the face mesh found no face."""
    if mesh is None:
        return {"pose": None, "blendshapes": None}
    angles = (mesh.pose.yaw, mesh.pose.pitch, mesh.pose.roll)
    return {
        "pose": {k: round(float(v), 2) for k, v in zip(POSE, angles, strict=True)},
        "blendshapes": {k: round(float(v), 5) for k, v in mesh.blendshapes.items()},
    }


class JsonlSink(Sink):
    """Per-face per-frame records as JSON Lines; each frame's lines land in one write."""

    def __init__(
        self, path: Path, labels: Sequence[str], min_confidence: float | None = None
    ) -> None:
        self.labels = tuple(labels)
        self.min_confidence = min_confidence
        self._file = RecordFile(path)

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        records = face_records(result, self.labels, self.min_confidence)
        self._file.append("".join(json.dumps(record) + "\n" for record in records))

    def finish(self) -> None:
        self._file.finish()

    def commit(self) -> None:
        self._file.commit()

    def keep_partial(self) -> list[Path]:
        return self._file.keep_partial(worth_keeping=self._file.size > 0)

    def abort(self) -> None:
        self._file.abort()


class CsvSink(Sink):
    """The same records as CSV: one column per box coordinate and per class probability, and
    with the face mesh one per pose angle and per blendshape (``csv_header``)."""

    def __init__(
        self,
        path: Path,
        labels: Sequence[str],
        min_confidence: float | None = None,
        face_mesh: bool = False,
    ) -> None:
        self.labels = tuple(labels)
        self.min_confidence = min_confidence
        self.face_mesh = face_mesh
        self._file = RecordFile(path)
        try:
            self._file.append(_csv_text([csv_header(self.labels, face_mesh)]))
        except FerLiveError:
            self._file.abort()
            raise
        self._header_size = self._file.size

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        records = face_records(result, self.labels, self.min_confidence)
        self._file.append(_csv_text([csv_row(r, self.labels, self.face_mesh) for r in records]))

    def finish(self) -> None:
        self._file.finish()

    def commit(self) -> None:
        self._file.commit()

    def keep_partial(self) -> list[Path]:
        # a header alone holds no result
        return self._file.keep_partial(worth_keeping=self._file.size > self._header_size)

    def abort(self) -> None:
        self._file.abort()


_CSV_HEAD = ["frame", "t_s", "track_id", "x0", "y0", "x1", "y1", "score"]
_CSV_TAIL = ["label", "confidence", "source", "box_source", "schema"]
# The pose's fields, in the record and as CSV columns.
POSE = ("yaw", "pitch", "roll")


def csv_header(labels: Sequence[str], face_mesh: bool = False) -> list[str]:
    """The CSV columns: the box, ``p_<label>`` per class, with the face mesh ``yaw, pitch,
    roll`` and ``bs_<name>`` per blendshape, then label, confidence, source, box_source, schema."""
    mesh = [*POSE, *(f"bs_{name}" for name in BLENDSHAPES)] if face_mesh else []
    return [*_CSV_HEAD, *(f"p_{label}" for label in labels), *mesh, *_CSV_TAIL]


def csv_row(record: dict[str, Any], labels: Sequence[str], face_mesh: bool = False) -> list[Any]:
    """One record as a CSV row under ``csv_header`` (empty mesh cells where no face was found)."""
    r = record
    head = [r["frame"], r["t_s"], r["track_id"], *r["box"], r["score"]]
    probs = [r["probs"][label] for label in labels]
    mesh: list[Any] = []
    if face_mesh:
        pose, shapes = r.get("pose"), r.get("blendshapes")
        mesh += [None] * len(POSE) if pose is None else [pose[k] for k in POSE]
        mesh += [None] * len(BLENDSHAPES) if shapes is None else [shapes[k] for k in BLENDSHAPES]
    tail = [r["label"], r["confidence"], r["source"], r["box_source"], r["schema"]]
    return [*head, *probs, *mesh, *tail]


def _csv_text(rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()
