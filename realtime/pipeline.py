"""The pipeline: read → detect → update → collate → infer → route → smooth, timed per stage.

``run`` wires stages it is given and holds no stage-specific logic; ``process`` adds the
overlay and the sinks; ``open_stages`` builds the stages from a ``LiveConfig``. Nothing is
accumulated per frame, so memory stays flat on long videos. Example::

    with open_source("clip.mp4") as source, open_stages(config) as stages:
        for result in run(source, stages):
            print(result.frame.index, result.predictions.probs)
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from fer_live.capture.read_ahead import ReadAhead
from fer_live.config import LiveConfig
from fer_live.detect.table import TilingDetector
from fer_live.errors import ConfigError, SourceError
from fer_live.infer.batch import collate, route
from fer_live.infer.card import ModelCard
from fer_live.outputs.render import Hud, OverlayRenderer
from fer_live.outputs.sinks import Sink
from fer_live.smooth.table import Smoother
from fer_live.types import FaceBoxes, FaceMesh, Frame, FrameResult, ModelOutput, Tracks

logger = logging.getLogger(__name__)

# Located frames queued ahead of inference: enough to cover a search frame (tiled 1080p takes
# several detector calls) without adding latency to a live camera.
_LOCATE_AHEAD = 2
STAGES = ("decode", "detect", "track", "preprocess", "infer", "smooth", "render", "write")
# The face mesh's stage, timed only in runs with ``--face-mesh``.
MESH_STAGE = "mesh"


class Detector(Protocol):
    """Finds faces; None means the frame was not searched (the tracker carries the boxes)."""

    def detect(self, frame: Frame) -> FaceBoxes | None: ...


class Tracker(Protocol):
    def update(self, boxes: FaceBoxes | None, frame_index: int) -> Tracks: ...

    def reset(self) -> None: ...


class Mesher(Protocol):
    def measure(self, frame: Frame, tracks: Tracks) -> Mapping[int, FaceMesh | None]: ...


class Backend(Protocol):
    card: ModelCard
    name: str
    device: str

    def infer(self, pixels: np.ndarray) -> ModelOutput: ...


@dataclass(frozen=True)
class Stages:
    """The stages of one run.

    Attributes:
        detector: Finds faces; on frames it does not search (None) the tracker carries the
            boxes (``fer_live.detect.plan`` chooses those frames).
        tracker: Gives boxes stable ids and carries them over skipped frames.
        backend: Classifies face crops.
        smoother: Smooths each track's probabilities over time.
        batch_frames: Faces of this many consecutive frames go to the backend in one call.
        independent: Frames are unrelated still images: the tracker starts afresh on each
            (ids stay unique across the run, but no face is matched across two photos).
        mesh: Measures head pose and blendshapes of the tracked faces (``--face-mesh``); None
            runs no face mesh.
    """

    detector: Detector
    tracker: Tracker
    backend: Backend
    smoother: Smoother
    batch_frames: int = 1
    independent: bool = False
    mesh: Mesher | None = None

    def __post_init__(self) -> None:
        if self.batch_frames < 1:
            raise ConfigError(f"batch_frames must be >= 1, got {self.batch_frames}")


@dataclass
class _Pending:
    frame: Frame
    tracks: Tracks
    timings_ms: dict[str, float]
    box_source: str
    mesh: Mapping[int, FaceMesh | None] | None = None


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def run(
    frames: Iterable[Frame], stages: Stages, stop: threading.Event | None = None
) -> Generator[FrameResult, None, None]:
    """Process frames in order, yielding one FrameResult per frame.

    Reading, detection and tracking run on a thread a frame or two ahead of collate, infer and
    smooth (``fer_live.capture.read_ahead``): PyAV, MediaPipe, OpenCV and ONNX Runtime release the
    GIL, so on two cores the two halves overlap. Order is kept and no frame is skipped.

    Preprocess and infer times of a multi-frame batch are split evenly over its frames. When
    the source fails mid-stream (SourceError), the frames already read are finished and
    yielded before the error propagates, so no processed frame is lost.

    Args:
        frames: Any iterable of frames (usually an open source).
        stages: The stages to run.
        stop: When set, the run ends as soon as it would wait for the next frame (the frames
            already located are finished first).

    Yields:
        FrameResult with ``timings_ms`` for decode, detect, track, preprocess, infer, smooth.
    """
    pending: list[_Pending] = []
    reader = ReadAhead(lambda: _locate(frames, stages), _LOCATE_AHEAD, "detect", cancel=stop)
    located = iter(reader)
    try:
        while True:
            try:
                item = next(located, None)
            except SourceError:
                yield from _finish(pending, stages)
                raise
            if item is None:
                break
            pending.append(item)
            if len(pending) >= stages.batch_frames:
                yield from _finish(pending, stages)
                pending = []
        yield from _finish(pending, stages)
    finally:
        reader.stop()  # ends the thread before the caller closes the source


def _locate(frames: Iterable[Frame], stages: Stages) -> Iterator[_Pending]:
    """Read, detect and track: each frame with its tracks, on the read-ahead thread."""
    frame_iter = iter(frames)
    while True:
        t0 = time.perf_counter()
        frame = next(frame_iter, None)
        if frame is None:
            return
        yield _locate_one(frame, stages, _ms_since(t0))


def _locate_one(frame: Frame, stages: Stages, decode_ms: float) -> _Pending:
    """Detect (the detector's plan may skip the search: None), track and, with a face mesh,
    measure one frame: on the read-ahead thread, beside inference on the caller's."""
    timings = {"decode": decode_ms}
    t0 = time.perf_counter()
    boxes = stages.detector.detect(frame)
    timings["detect"] = _ms_since(t0)
    t0 = time.perf_counter()
    if stages.independent:
        stages.tracker.reset()
    tracks = stages.tracker.update(boxes, frame.index)
    timings["track"] = _ms_since(t0)
    # Frames between two searches (tiled 1080p: 2 of 3) hold boxes the tracker carried.
    box_source = boxes.source if boxes is not None else "tracker"
    mesh = None
    if stages.mesh is not None:
        t0 = time.perf_counter()
        mesh = stages.mesh.measure(frame, tracks)
        timings[MESH_STAGE] = _ms_since(t0)
    return _Pending(frame, tracks, timings, box_source, mesh)


def step(frame: Frame, stages: Stages) -> FrameResult:
    """Process one frame at once, on the caller's thread: what ``run`` does per frame, for a
    loop the caller owns (``fer_live.Recognizer.update``). Tracks and smoothing carry over
    between calls through the stages' state."""
    return next(_finish([_locate_one(frame, stages, 0.0)], stages))


def _finish(pending: Sequence[_Pending], stages: Stages) -> Iterator[FrameResult]:
    """Collate, infer, route and smooth a group of frames."""
    if not pending:
        return
    card = stages.backend.card
    t0 = time.perf_counter()
    batch = collate([(p.frame, p.tracks) for p in pending], card)
    preprocess_ms = _ms_since(t0) / len(pending)
    t0 = time.perf_counter()
    output = stages.backend.infer(batch.pixels)
    infer_ms = _ms_since(t0) / len(pending)
    routed = route(batch, output, [p.frame.index for p in pending], card.num_classes, card.decision)
    for p in pending:
        t0 = time.perf_counter()
        predictions = routed[p.frame.index]
        if p.frame.t_s is not None:  # a still has no time, so nothing to smooth it with
            predictions = stages.smoother.smooth(predictions, p.frame.t_s)
        timings = {**p.timings_ms, "preprocess": preprocess_ms, "infer": infer_ms}
        timings["smooth"] = _ms_since(t0)
        yield FrameResult(p.frame, p.tracks, predictions, timings, p.box_source, p.mesh)


class RateMeter:
    """Wall-clock frame rate over the last second, and smoothed stage latencies (for the HUD).

    The rate counts frames finished per second of wall time over a sliding window. With
    ``--batch-frames N`` results arrive N at once, so the gap between two results is ~0 inside
    a batch: averaging per-gap rates then reads ~8x too high ("FPS 1631.9" against 218).

    Args:
        weight: EMA weight of the newest stage latency.
        window_s: Span of wall time the frame rate is measured over.
        clock: Seconds, monotonic (injectable for tests).
    """

    def __init__(
        self,
        weight: float = 0.1,
        window_s: float = 1.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.weight = weight
        self.window_s = window_s
        self.fps = 0.0
        self.frames = 0
        self.timings_ms: dict[str, float] = {}
        self._clock = clock
        self._ticks: deque[float] = deque()

    def tick(self, timings_ms: Mapping[str, float]) -> None:
        """Count one finished frame and fold in its stage latencies."""
        now = self._clock()
        self.frames += 1
        self._ticks.append(now)
        # keep one tick older than the window: it marks where the counted span starts
        while len(self._ticks) > 2 and now - self._ticks[1] >= self.window_s:
            self._ticks.popleft()
        span = now - self._ticks[0]
        if span > 0:
            self.fps = (len(self._ticks) - 1) / span
        for key, value in timings_ms.items():
            old = self.timings_ms.get(key, value)
            self.timings_ms[key] = old + self.weight * (value - old)


@dataclass(frozen=True)
class RunSummary:
    """What a finished run did."""

    frames: int
    face_frames: int
    wall_s: float
    dropped: int
    interrupted: bool

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0


def process(
    source: Iterable[Frame],
    stages: Stages,
    sinks: Sequence[Sink],
    renderer: OverlayRenderer | None = None,
    on_result: Callable[[FrameResult], None] | None = None,
    stop: threading.Event | None = None,
) -> RunSummary:
    """Run the pipeline, draw the overlay when a sink needs it, and write to every sink.

    Ctrl-C (a KeyboardInterrupt, or ``stop`` set by a signal handler) ends the run cleanly with
    ``interrupted=True``, also while it waits for a frame; the caller closes the sinks, which
    finalizes the outputs. A sink's ``stop_requested`` (window ``q``/Esc) also ends it.

    Args:
        source: An open source (its ``dropped`` attribute, if any, is reported on the HUD).
        stages: The stages to run.
        sinks: Where results go.
        renderer: Draws the overlay; required when a sink ``needs_image``.
        on_result: Called with each finished FrameResult (progress bars, benchmarks).
        stop: When set, the run ends after the current frame is fully written.

    Returns:
        Frame count, frames with a face, wall time, dropped frames and whether interrupted.
    """
    needs_image = any(s.needs_image for s in sinks)
    if needs_image and renderer is None:
        raise ValueError("a sink needs the overlay but no renderer was given")
    meter, frames, face_frames, interrupted = RateMeter(), 0, 0, False
    start = time.perf_counter()
    results = run(source, stages, stop)
    try:
        for stage_result in results:
            result = _emit(stage_result, sinks, renderer if needs_image else None, meter, source)
            frames += 1
            face_frames += len(result.tracks) > 0
            if on_result is not None:
                on_result(result)
            if stop is not None and stop.is_set():
                break
            if any(s.stop_requested for s in sinks):
                break
        interrupted = stop is not None and stop.is_set()  # also when it ended a wait for a frame
    except KeyboardInterrupt:
        interrupted = True
    finally:
        results.close()
    dropped = int(getattr(source, "dropped", 0))
    return RunSummary(frames, face_frames, time.perf_counter() - start, dropped, interrupted)


def _emit(
    result: FrameResult,
    sinks: Sequence[Sink],
    renderer: OverlayRenderer | None,
    meter: RateMeter,
    source: object,
) -> FrameResult:
    """Draw (if needed) and write one result; returns it with the render and write times.

    The sinks get the result as the pipeline made it (they cannot know their own write time);
    the returned copy is what ``on_result`` and the rate meter see. Sinks with ``hud`` (the
    window) get the overlay with the FPS and latency figures, the others (files) without.
    """
    t0 = time.perf_counter()
    plain = with_hud = None
    if renderer is not None:
        huds = [sink.hud for sink in sinks if sink.needs_image]
        fps = None if result.frame.t_s is None else meter.fps  # a still has no frame rate
        hud = Hud(fps, meter.timings_ms, int(getattr(source, "dropped", 0)))
        frame, tracks, predictions = result.frame, result.tracks, result.predictions
        if any(huds) and not all(huds):
            plain, with_hud = renderer.draw_layers(frame, tracks, predictions, hud)
        else:
            plain = with_hud = renderer.draw(frame, tracks, predictions, hud if any(huds) else None)
    render_ms = _ms_since(t0)
    t0 = time.perf_counter()
    for sink in sinks:
        sink.write(result, with_hud if sink.hud else plain)
    timed = result.with_timings(render=render_ms, write=_ms_since(t0))
    meter.tick(timed.timings_ms)
    return timed


@contextmanager
def open_stages(config: LiveConfig) -> Iterator[Stages]:
    """Build (and finally release) every stage described by ``config``.

    The backend loads first, so a broken model is reported before the detector starts.

    Raises:
        ModelError: The model is missing, broken or mismatched.
        BackendUnavailable: The backend or device is not available.
        ConfigError: A stage rejects its settings.
    """
    from fer_live.infer.assets import resolve_model_path
    from fer_live.infer.backends import open_backend

    cfg = config.backend
    with ExitStack() as stack:
        model = resolve_model_path(cfg.model, cfg.backend)
        backend = stack.enter_context(open_backend(model, cfg.backend, cfg.device, cfg.threads))
        yield stack.enter_context(stages_around(backend, model, config))


@contextmanager
def stages_around(
    backend: Backend, model: Path, config: LiveConfig, faces: TilingDetector | None = None
) -> Iterator[Stages]:
    """The stages of one run around a loaded backend: the detector (released afterwards), a
    new tracker and a new smoother, so a second run with the same backend starts afresh; with
    ``--face-mesh`` the face landmarker too (else it is not loaded).

    Args:
        backend: The loaded model.
        model: Its file (the smoother's head is found beside it).
        config: The run's settings, already adapted to the source (``for_source``).
        faces: An opened video detector to reuse (the caller owns and closes it; it keeps no
            state between frames): a batch job's worker opens one for all its inputs. Stills
            always open their own, as their detector is set up for stills.

    Raises:
        ConfigError: A stage rejects its settings.
    """
    from fer_live.detect.plan import PlannedDetector
    from fer_live.detect.table import open_detector
    from fer_live.infer.still import SECOND_LOOK_MIN, LandmarkerEvidence, StillFallback, still_probe
    from fer_live.smooth.table import make_smoother
    from fer_live.track.iou import IouTracker

    cfg = config
    with ExitStack() as stack:
        det = cfg.detect
        if faces is None or det.stills:
            faces = open_detector(
                det.detector, min_score=det.min_score, max_faces=det.max_faces, stills=det.stills
            )
            stack.callback(faces.close)
        # Video: the plan chooses tiles and the frames to search per frame size; stills: every
        # image, whole and tiled, a weak hit confirmed by a second look or the landmarker.
        detector: Detector
        if det.stills:
            evidence = stack.enter_context(LandmarkerEvidence())
            second = open_detector(
                det.detector, min_score=SECOND_LOOK_MIN, max_faces=det.max_faces, stills=False
            )
            stack.callback(second.close)
            probe = still_probe(model, backend.card, backend)
            if probe is not None:
                stack.callback(probe.close)
            detector = StillFallback(
                faces, backend.card.crop, evidence, det.tiles, second, probe=probe
            )
        else:
            detector = PlannedDetector(faces, det.tiles, det.every)
        track = cfg.track
        tracker = IouTracker(
            track.iou_threshold, track.max_age, track.min_hits, track.confirm_score
        )
        smoother = make_smoother(cfg.smooth.name, model=model, card=backend.card)
        mesh = None
        if cfg.mesh.enabled:
            from fer_live.mesh import FaceMesher

            mesh = stack.enter_context(FaceMesher())
        yield Stages(detector, tracker, backend, smoother, cfg.batch.frames, det.stills, mesh)
