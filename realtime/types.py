"""Frozen, validated types passed between pipeline stages.

Each stage takes one of these and returns another; shapes are checked once here so that stages
can trust their inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

import numpy as np

from fer_live.errors import ConfigError


def check_shape(name: str, array: np.ndarray, shape: tuple[int | None, ...]) -> None:
    """Raise ValueError unless ``array`` matches ``shape`` (None matches any size)."""
    ok = array.ndim == len(shape) and all(
        want is None or got == want for got, want in zip(array.shape, shape, strict=True)
    )
    if not ok:
        want_text = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want_text}, got {tuple(array.shape)}")


@dataclass(frozen=True)
class Frame:
    """One decoded image from a source.

    Attributes:
        index: 0-based frame number within the source.
        t_s: Timestamp in seconds, taken from the source (container pts or capture clock);
            None for still images, which have no time.
        image: BGR uint8 image, shape (H, W, 3).
        source_id: Name of the source, e.g. a path or ``camera:0``.
    """

    index: int
    t_s: float | None
    image: np.ndarray
    source_id: str = ""

    def __post_init__(self) -> None:
        check_shape("Frame.image", self.image, (None, None, 3))
        if self.image.dtype != np.uint8:
            raise ValueError(f"Frame.image must be uint8, got {self.image.dtype}")


@dataclass(frozen=True)
class FaceBoxes:
    """Face detections in one frame: boxes (N, 4) as pixel xyxy and scores (N,).

    ``source`` says how the boxes were found: ``detector``, or for still images the fallbacks
    ``padded`` (detector on a bordered copy) and ``whole_image`` (``fer_live.infer.still``).
    """

    xyxy: np.ndarray
    score: np.ndarray
    source: str = "detector"

    def __post_init__(self) -> None:
        check_shape("FaceBoxes.xyxy", self.xyxy, (None, 4))
        check_shape("FaceBoxes.score", self.score, (self.xyxy.shape[0],))

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    @staticmethod
    def empty() -> FaceBoxes:
        return FaceBoxes(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))


@dataclass(frozen=True)
class Tracks:
    """Confirmed tracks visible in one frame.

    Attributes:
        xyxy: Boxes (N, 4), pixel xyxy.
        track_id: Stable ids (N,), never reused within a run.
        score: Detector score of the last matched detection (N,).
        detected: True where the box comes from this frame's detection (N,), False where the
            tracker carried it from an earlier detection.
    """

    xyxy: np.ndarray
    track_id: np.ndarray
    score: np.ndarray
    detected: np.ndarray

    def __post_init__(self) -> None:
        check_shape("Tracks.xyxy", self.xyxy, (None, 4))
        n = self.xyxy.shape[0]
        check_shape("Tracks.track_id", self.track_id, (n,))
        check_shape("Tracks.score", self.score, (n,))
        check_shape("Tracks.detected", self.detected, (n,))

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    @staticmethod
    def empty() -> Tracks:
        return Tracks(
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.int64),
            np.zeros((0,), np.float32),
            np.zeros((0,), bool),
        )


@dataclass(frozen=True)
class CropBatch:
    """Model-ready face crops of one or more frames, with routing keys.

    Attributes:
        pixels: float32 (B, C, H, W), already normalized for the model.
        keys: (frame_index, track_id) for each row, so results route back.
    """

    pixels: np.ndarray
    keys: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        check_shape("CropBatch.pixels", self.pixels, (len(self.keys), None, None, None))
        if self.pixels.dtype != np.float32:
            raise ValueError(f"CropBatch.pixels must be float32, got {self.pixels.dtype}")


@dataclass(frozen=True)
class ModelOutput:
    """What a backend returns for a batch: logits (B, C), an embedding (B, D) or None, and the
    GUS-T head's first-layer projection folded into the model, ``gus_proj`` (B, H) or None."""

    logits: np.ndarray
    embedding: np.ndarray | None = None
    projection: np.ndarray | None = None

    def __post_init__(self) -> None:
        check_shape("ModelOutput.logits", self.logits, (None, None))
        if self.embedding is not None:
            check_shape("ModelOutput.embedding", self.embedding, (self.logits.shape[0], None))
        if self.projection is not None:
            check_shape("ModelOutput.projection", self.projection, (self.logits.shape[0], None))


@dataclass(frozen=True)
class Predictions:
    """Per-track class probabilities for one frame: track_id (N,), probs (N, C), and the model's
    embedding (N, D) and folded GUS-T projection (N, H) rows when it has them."""

    track_id: np.ndarray
    probs: np.ndarray
    embedding: np.ndarray | None = None
    projection: np.ndarray | None = None

    def __post_init__(self) -> None:
        check_shape("Predictions.track_id", self.track_id, (None,))
        check_shape("Predictions.probs", self.probs, (self.track_id.shape[0], None))
        if self.embedding is not None:
            check_shape("Predictions.embedding", self.embedding, (self.track_id.shape[0], None))
        if self.projection is not None:
            check_shape("Predictions.projection", self.projection, (self.track_id.shape[0], None))

    def __len__(self) -> int:
        return int(self.track_id.shape[0])

    @staticmethod
    def empty(num_classes: int) -> Predictions:
        return Predictions(np.zeros((0,), np.int64), np.zeros((0, num_classes), np.float32))


@dataclass(frozen=True)
class FacePose:
    """Head pose in degrees, as seen in the image (the sign convention is in docs/records.md).

    Attributes:
        yaw: > 0 when the face turns toward the image's right.
        pitch: > 0 when the face looks up.
        roll: > 0 when the head tilts counterclockwise on the screen (its top toward the
            image's left).
    """

    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True)
class FaceMesh:
    """What the face mesh (``--face-mesh``) measured on one face: its head pose and the 52
    blendshape scores in [0, 1], by name, in the model's order."""

    pose: FacePose
    blendshapes: Mapping[str, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "blendshapes", MappingProxyType(dict(self.blendshapes)))


@dataclass(frozen=True)
class FrameResult:
    """Everything the pipeline knows about one frame once it has been processed.

    ``box_source`` is the ``FaceBoxes.source`` of the frame's detection, or ``tracker`` on a frame
    that was not searched (its boxes were carried by the tracker). ``mesh`` is None unless the
    face mesh ran (``--face-mesh``); then it maps each track id to what the mesh measured, or to
    None where the landmarker found no face in the track's box. ``timings_ms`` is a
    read-only copy of the stage latencies given: a later stage that adds its own time builds a
    new result (``with_timings``) instead of writing into one a sink may still hold.
    """

    frame: Frame
    tracks: Tracks
    predictions: Predictions
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    box_source: str = "detector"
    mesh: Mapping[int, FaceMesh | None] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "timings_ms", MappingProxyType(dict(self.timings_ms)))
        if self.mesh is not None:
            object.__setattr__(self, "mesh", MappingProxyType(dict(self.mesh)))

    def with_timings(self, **timings_ms: float) -> FrameResult:
        """A copy with these stage latencies added to (or replacing) the existing ones."""
        return replace(self, timings_ms={**self.timings_ms, **timings_ms})


# --- where a model runs ------------------------------------------------------------------------

DeviceKind = Literal["cpu", "cuda", "auto"]
_KINDS: tuple[DeviceKind, ...] = ("cpu", "cuda", "auto")


@dataclass(frozen=True)
class Device:
    """Where a model runs: ``--device`` parsed once, where the flag enters (``parse_device``).

    Backends and the ``auto`` rules take a ``Device`` and never split strings themselves.

    Attributes:
        kind: ``cpu``, ``cuda`` or ``auto`` (the best this machine has).
        index: The GPU for ``cuda:N``; None for plain ``cuda`` (torch's current device).
    """

    kind: DeviceKind
    index: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"Device.kind must be one of {_KINDS}, got {self.kind!r}")
        if self.index is not None and (self.kind != "cuda" or self.index < 0):
            raise ValueError(f"Device.index needs kind 'cuda' and index >= 0, got {self!r}")

    @property
    def is_cuda(self) -> bool:
        return self.kind == "cuda"

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"


CPU = Device("cpu")
CUDA = Device("cuda")
AUTO = Device("auto")


def parse_device(text: str, flag: str = "--device") -> Device:
    """``"cuda:1"`` -> ``Device("cuda", 1)``: a malformed value (``cuda:x``, ``cuda:-1``) fails
    here, naming the flag, instead of in ``int()`` deep inside a backend.

    Raises:
        ConfigError: Not ``cpu``, ``cuda``, ``cuda:N`` (N >= 0) or ``auto``; names ``flag``.

    Example:
        >>> parse_device("cuda:1")
        Device(kind='cuda', index=1)
    """
    plain = {"cpu": CPU, "cuda": CUDA, "auto": AUTO}
    if text.strip() in plain:
        return plain[text.strip()]
    kind, _, index = text.strip().partition(":")
    if kind == "cuda" and index.isascii() and index.isdigit():
        return Device("cuda", int(index))
    raise ConfigError(f"{flag} must be cpu, cuda, cuda:N (N >= 0) or auto, got {text!r}")
