"""The public result types: one ``Face`` per face, one ``FrameResult`` per frame.

They are built from the CLI's records (``fer_live.outputs.records.face_records``), so a face read
through the API and the line ``fer-live --jsonl`` writes for it carry the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from fer_live.outputs.records import POSE, SCHEMA_VERSION
from fer_live.types import FacePose


@dataclass(frozen=True)
class Face:
    """One face in one frame.

    Attributes:
        track_id: The tracker's id, stable while the face stays in view (never reused in a
            stream; each still image gets new ids).
        box: ``(x0, y0, x1, y1)`` in pixels of the input image.
        score: The face detector's score in [0, 1].
        label: The expression with the highest probability, or ``"uncertain"`` when that
            probability is below the ``Recognizer``'s ``min_confidence``.
        confidence: The highest probability (also for an uncertain face).
        probs: Probability of every class (after the model's decision rule; smoothed over
            time in a stream).
        box_source: How the box was found: ``detector``, ``tracker`` (carried on a frame that
            was not searched), or for stills ``padded`` or ``whole_image``.
        face_mesh: Whether the face mesh ran (``Recognizer(face_mesh=True)``, ``--face-mesh``).
        pose: The head pose in degrees (yaw, pitch, roll; signs in docs/records.md); None
            without the face mesh or where it found no face.
        blendshapes: The 52 blendshape scores by name; None as ``pose``.
    """

    track_id: int
    box: tuple[float, float, float, float]
    score: float
    label: str
    confidence: float
    probs: Mapping[str, float]
    box_source: str
    face_mesh: bool = False
    pose: FacePose | None = None
    blendshapes: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "probs", MappingProxyType(dict(self.probs)))
        if self.blendshapes is not None:
            object.__setattr__(self, "blendshapes", MappingProxyType(dict(self.blendshapes)))

    @staticmethod
    def from_record(record: Mapping[str, Any]) -> Face:
        """The face of one CLI record (a line of ``--jsonl``)."""
        x0, y0, x1, y1 = (float(v) for v in record["box"])
        pose, shapes = record.get("pose"), record.get("blendshapes")
        return Face(
            track_id=int(record["track_id"]),
            box=(x0, y0, x1, y1),
            score=float(record["score"]),
            label=str(record["label"]),
            confidence=float(record["confidence"]),
            probs={str(k): float(v) for k, v in record["probs"].items()},
            box_source=str(record["box_source"]),
            face_mesh="pose" in record,
            pose=None if pose is None else FacePose(*(float(pose[k]) for k in POSE)),
            blendshapes=None if shapes is None else {str(k): float(v) for k, v in shapes.items()},
        )

    def to_dict(self) -> dict[str, Any]:
        """The face's fields as JSON-ready values (``pose`` and ``blendshapes`` only when the
        face mesh ran, as in the records)."""
        fields: dict[str, Any] = {
            "track_id": self.track_id,
            "box": list(self.box),
            "score": self.score,
            "probs": dict(self.probs),
            "label": self.label,
            "confidence": self.confidence,
        }
        if self.face_mesh:
            pose = self.pose
            fields["pose"] = None if pose is None else dict(zip(POSE, _angles(pose), strict=True))
            fields["blendshapes"] = None if self.blendshapes is None else dict(self.blendshapes)
        return {**fields, "box_source": self.box_source}


def _angles(pose: FacePose) -> tuple[float, float, float]:
    return (pose.yaw, pose.pitch, pose.roll)


@dataclass(frozen=True)
class FrameResult:
    """Everything known about one processed frame.

    Attributes:
        frame: 0-based frame index within the source (or the count of ``update`` calls).
        t_s: Time in seconds (from the source, or given to ``update``); None for still images.
        source: The source's name (credentials masked), as in the CLI's records.
        faces: The faces, in the tracker's order.
        image: The annotated frame (BGR, uint8) when it was asked for, else None.
        timings_ms: Milliseconds spent in each pipeline stage for this frame.
    """

    frame: int
    t_s: float | None
    source: str
    faces: tuple[Face, ...]
    image: np.ndarray | None = field(default=None, repr=False, compare=False)
    timings_ms: Mapping[str, float] = field(default_factory=dict, compare=False)

    def records(self) -> list[dict[str, Any]]:
        """One CLI record per face: exactly what ``fer-live --jsonl`` writes for this frame."""
        records = []
        for face in self.faces:
            fields = face.to_dict()
            box_source = fields.pop("box_source")
            records.append(
                {
                    "frame": self.frame,
                    "t_s": self.t_s,
                    **fields,
                    "source": self.source,
                    "box_source": box_source,
                    "schema": SCHEMA_VERSION,
                }
            )
        return records

    def to_dict(self) -> dict[str, Any]:
        """The frame as one JSON-ready object: its index, time, source and faces."""
        return {
            "schema": SCHEMA_VERSION,
            "frame": self.frame,
            "t_s": self.t_s,
            "source": self.source,
            "faces": [face.to_dict() for face in self.faces],
        }
