"""``Recognizer``: the detector, the model and the smoother loaded once, then used on stills
(``predict``), on sources (``stream``) and on frames pushed from a loop the caller owns
(``update``). Each of the three runs the same stages as the CLI, so it gives the same records.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Literal

import numpy as np

from fer_live import types as stage
from fer_live.api.results import Face, FrameResult
from fer_live.capture.sources import open_source
from fer_live.config import (
    BackendConfig,
    CaptureConfig,
    DetectConfig,
    LiveConfig,
    MeshConfig,
    OutputConfig,
    SmoothConfig,
)
from fer_live.detect.table import detector_entry
from fer_live.errors import ConfigError, SourceError
from fer_live.infer.assets import resolve_model_path
from fer_live.infer.backends import open_backend
from fer_live.infer.backends.table import check_backend
from fer_live.outputs.records import face_records
from fer_live.outputs.render import OverlayRenderer
from fer_live.pipeline import Stages, run, stages_around, step
from fer_live.smooth.table import smoother_entry
from fer_live.track.iou import IouTracker
from fer_live.types import parse_device

logger = logging.getLogger(__name__)

Color = Literal["bgr", "rgb"]
ImageInput = np.ndarray | str | Path


class Recognizer:
    """Facial expressions of the faces in images, videos, streams and live frames.

    Loads the model once; ``predict``, ``stream`` and ``update`` then reuse it. Use it as a
    context manager, or call ``close()``, to release the model and the detectors.

    Thread safety: ``predict`` and ``update`` may be called from several threads (they take
    turns on an internal lock); a ``stream`` runs on the thread that iterates it. For work in
    parallel make one ``Recognizer`` per thread: they share nothing.

    Args:
        model: ``"default"``, ``"accurate"`` (the shipped tiers) or the path of a model file
            (``.onnx``, TorchScript ``.pt``, TensorRT ``.engine``).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        backend: ``"auto"`` or a backend name (``onnx``, ``torch``, ``tensorrt``, ...).
        smooth: Temporal smoother for streams and ``update``: ``"auto"`` (GUS-T when the model
            has a head), ``"graph"``, ``"ema"`` or ``"none"``.
        threads: CPU threads for inference (None: the backend's default).
        detector: BlazeFace range, ``"short"`` (faces within about 2 m) or ``"full"``.
        min_score: Lowest detector score kept as a face.
        max_faces: Most faces per frame.
        detect_tiles: Also search tiles, N across the longer side (None: by frame size).
        detect_every: Search every K-th video frame (None: by frame size).
        min_confidence: A face whose top probability (after smoothing) is below this, in
            (0, 1], gets the label ``"uncertain"``; its ``probs`` and ``confidence`` are kept
            (None: always the top class). As ``--min-confidence``.
        face_mesh: Also measure each face's head pose and blendshapes (``Face.pose``,
            ``Face.blendshapes``), as ``--face-mesh`` does; loads MediaPipe's face landmarker.

    Raises:
        ModelError: The model is missing, broken or mismatched.
        BackendUnavailable: The backend or device is not available here.
        ConfigError: A setting is out of range.
    """

    def __init__(
        self,
        model: str | Path = "default",
        device: str = "cpu",
        backend: str = "auto",
        smooth: str = "auto",
        *,
        threads: int | None = None,
        detector: str = "short",
        min_score: float = 0.55,
        max_faces: int = 32,
        detect_tiles: int | None = None,
        detect_every: int | None = None,
        min_confidence: float | None = None,
        face_mesh: bool = False,
    ) -> None:
        model_arg = None if str(model) == "default" else Path(model)
        # each name is checked against its stage's table, as the CLI checks its flags
        self.config = LiveConfig(
            detect=DetectConfig(
                every=detect_every,
                max_faces=max_faces,
                min_score=min_score,
                tiles=detect_tiles,
                detector=detector_entry(detector).name,
            ),
            backend=BackendConfig(model_arg, check_backend(backend), parse_device(device), threads),
            smooth=SmoothConfig(smoother_entry(smooth).name),
            output=OutputConfig(min_confidence=min_confidence),
            mesh=MeshConfig(bool(face_mesh)),
        )
        self._stack = ExitStack()
        self._lock = threading.Lock()
        cfg = self.config.backend
        self.model_path = resolve_model_path(cfg.model, cfg.backend)
        self._backend = self._stack.enter_context(
            open_backend(self.model_path, cfg.backend, cfg.device, cfg.threads)
        )
        self.labels: tuple[str, ...] = tuple(self._backend.card.labels)
        self.min_confidence = min_confidence
        self._renderer = OverlayRenderer(self.labels, min_confidence=min_confidence)
        self._still: Stages | None = None
        self._live: Stages | None = None
        self._live_stack = ExitStack()  # the stages of update, closed by reset
        self._live_index = 0
        self._live_clock = 0.0
        self._last_t: float | None = None
        self._closed = False

    def __enter__(self) -> Recognizer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the model and the detectors (safe to call twice)."""
        with self._lock:
            self._closed = True
            self._still = self._live = None
            self._live_stack.close()
            self._stack.close()

    def predict(self, image: ImageInput, *, color: Color = "bgr") -> list[Face]:
        """The faces in one still image, as ``fer-live -s IMAGE --jsonl`` records them.

        Args:
            image: An ``(H, W, 3)`` uint8 array (or ``(H, W)`` gray), or the path of an image
                file (read as the CLI reads it).
            color: Channel order of an array: ``"bgr"`` (OpenCV) or ``"rgb"`` (PIL, imageio).

        Returns:
            One ``Face`` per face found; an image without a face gives an empty list.

        Raises:
            SourceError: The path is not a readable image.
            ConfigError: The array is not an image.
        """
        frame = self._still_frame(image, color)
        with self._lock:
            self._check_open()
            if self._still is None:
                self._still = self._stack.enter_context(self.stages(live=False, still=True))
            # a new tracker per picture, so ids start at 1 as in a CLI run on that picture
            stages = replace(self._still, tracker=self._tracker())
            result = step(frame, stages)
        return list(self._result(result, annotate=False).faces)

    def stream(
        self, source: str | int | Path, *, max_frames: int | None = None, annotate: bool = False
    ) -> Iterator[FrameResult]:
        """Process a camera, a video file, a URL, an image folder or a glob, frame by frame.

        The records equal those of ``fer-live -s SOURCE --jsonl``. Breaking out of the loop, or
        ``close()`` on the iterator, releases the source.

        Args:
            source: A camera index, a path, a URL (``rtsp://``, ``http://``, ``file://``), a
                folder of images or a glob.
            max_frames: Stop after this many frames (None: the whole source).
            annotate: Put the annotated frame in each result's ``image``.

        Yields:
            One ``FrameResult`` per frame, in order.

        Raises:
            SourceError: The source cannot be opened or fails while reading.
            ConfigError: ``max_frames`` is out of range.
        """
        self._check_open()
        capture = CaptureConfig(source=str(source), max_frames=max_frames)
        return self._stream(capture, annotate)

    def _stream(self, capture: CaptureConfig, annotate: bool) -> Iterator[FrameResult]:
        with ExitStack() as stack:
            source = stack.enter_context(
                open_source(capture.source, capture.max_frames, capture.reconnect_attempts)
            )
            stages = stack.enter_context(self.stages(live=source.live, still=source.still))
            results = run(source, stages)
            stack.callback(results.close)  # the read-ahead thread stops before the source
            for result in results:
                yield self._result(result, annotate)

    def update(
        self,
        frame: np.ndarray,
        t: float | None = None,
        *,
        color: Color = "bgr",
        annotate: bool = False,
    ) -> FrameResult:
        """Process the next frame of a live feed that the caller reads (push style).

        Tracks and smoothing carry over from the previous call; the result depends only on
        this frame and earlier ones (causal), and memory stays bounded: tracks unseen for a
        while are forgotten. ``reset()`` starts a new scene.

        Args:
            frame: ``(H, W, 3)`` uint8 image (or ``(H, W)`` gray).
            t: The frame's time in seconds, increasing (None: the time since the first
                ``update``, from a monotonic clock).
            color: ``"bgr"`` (OpenCV) or ``"rgb"``.
            annotate: Put the annotated frame in the result's ``image``.

        Raises:
            ConfigError: The array is not an image, or ``t`` goes back in time.
        """
        image = _as_bgr(frame, color)
        with self._lock:
            self._check_open()
            if self._live is None:
                self._live = self._live_stack.enter_context(self.stages(live=True, still=False))
                self._live_clock = time.monotonic()
            t_s = time.monotonic() - self._live_clock if t is None else float(t)
            if not np.isfinite(t_s) or (self._last_t is not None and t_s < self._last_t):
                raise ConfigError(
                    f"update: t must be finite and increasing, got {t} after {self._last_t}"
                )
            source_frame = stage.Frame(self._live_index, t_s, image, "update")
            result = step(source_frame, self._live)
            self._live_index += 1
            self._last_t = t_s
        return self._result(result, annotate)

    def reset(self) -> None:
        """Start ``update`` afresh (a new scene): no tracks, ids and frame indices from 0."""
        with self._lock:
            self._live_stack.close()  # the detector's frame plan is state too
            self._live = None
            self._live_index, self._last_t = 0, None

    def stages(self, *, live: bool, still: bool) -> AbstractContextManager[Stages]:
        """The CLI's stages for a source of this kind around the loaded model: a new detector,
        tracker and smoother, released with the context (for benchmarks and custom loops)."""
        config = self.config.for_source(live, still)
        return stages_around(self._backend, self.model_path, config)

    def _tracker(self) -> IouTracker:
        track = self.config.for_source(live=False, still=True).track
        return IouTracker(track.iou_threshold, track.max_age, track.min_hits, track.confirm_score)

    def _still_frame(self, image: ImageInput, color: Color) -> stage.Frame:
        if isinstance(image, np.ndarray):
            return stage.Frame(0, None, _as_bgr(image, color), "image")
        path = Path(image)
        if not path.is_file():
            raise SourceError(f"cannot read image '{path}': no such file")
        with open_source(str(path)) as source:
            if not source.still:
                raise ConfigError(f"predict takes one image; '{path}' is a video: use stream()")
            frames = iter(source)
            first = next(frames, None)
        if first is None:
            raise SourceError(f"cannot read image '{path}'")
        return first

    def _result(self, result: stage.FrameResult, annotate: bool) -> FrameResult:
        records = face_records(result, self.labels, self.min_confidence)
        image = None
        if annotate:
            image = self._renderer.draw(result.frame, result.tracks, result.predictions)
        t_s = result.frame.t_s
        return FrameResult(
            frame=result.frame.index,
            t_s=None if t_s is None else round(t_s, 4),
            source=result.frame.source_id,
            faces=tuple(Face.from_record(r) for r in records),
            image=image,
            timings_ms=dict(result.timings_ms),
        )

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError("this Recognizer is closed")


def _as_bgr(image: np.ndarray, color: Color) -> np.ndarray:
    """A contiguous BGR uint8 copy-free view of ``image`` where possible."""
    if color not in ("bgr", "rgb"):
        raise ConfigError(f"color must be 'bgr' or 'rgb', got {color!r}")
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        kind = getattr(image, "dtype", type(image).__name__)
        raise ConfigError(f"an image must be a uint8 numpy array, got {kind}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ConfigError(f"an image must have shape (H, W, 3), got {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ConfigError(f"an image must not be empty, got {image.shape}")
    image = image[:, :, :3]
    if color == "rgb":
        image = image[:, :, ::-1]
    return np.ascontiguousarray(image)
