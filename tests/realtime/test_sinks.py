"""Sinks: records per face per frame, decodable videos, annotated image folders."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import av
import numpy as np
import pytest

from fer_live.errors import FerLiveError
from fer_live.outputs.base import SinkSettings
from fer_live.outputs.sinks import (
    CsvSink,
    ImageDirSink,
    JsonlSink,
    NullSink,
    VideoFileSink,
    WindowSink,
    face_records,
)
from fer_live.outputs.staged import StagedFile
from fer_live.outputs.table import open_sinks
from fer_live.types import Frame, FrameResult, Predictions, Tracks

LABELS = ("neutral", "happiness", "surprise")


def _result(index: int, ids: list[int], h: int = 64, w: int = 96) -> FrameResult:
    n = len(ids)
    image = np.full((h, w, 3), index % 256, np.uint8)
    boxes = np.tile(np.array([[10, 12, 40, 50]], np.float32), (n, 1))
    tracks = Tracks(boxes, np.asarray(ids, np.int64), np.full(n, 0.9, np.float32), np.ones(n, bool))
    probs = np.tile(np.array([[0.2, 0.7, 0.1]], np.float32), (n, 1))
    predictions = Predictions(np.asarray(ids[::-1], np.int64), probs)
    return FrameResult(Frame(index, index / 25.0, image, "clip"), tracks, predictions, {})


def _decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_face_records_hold_every_field() -> None:
    # when
    records = face_records(_result(7, [4, 9]), LABELS)
    # then: one record per face, in prediction order
    assert [r["track_id"] for r in records] == [9, 4]
    first = records[0]
    assert first["frame"] == 7 and first["t_s"] == pytest.approx(0.28)
    assert first["box"] == [10.0, 12.0, 40.0, 50.0] and first["score"] == pytest.approx(0.9)
    assert first["probs"] == pytest.approx({"neutral": 0.2, "happiness": 0.7, "surprise": 0.1})
    assert first["label"] == "happiness" and first["confidence"] == pytest.approx(0.7)
    assert first["source"] == "clip"


def test_jsonl_and_csv_flush_every_frame(tmp_path: Path) -> None:
    # given
    jsonl, table = tmp_path / "r.jsonl", tmp_path / "r.csv"
    with JsonlSink(jsonl, LABELS) as js, CsvSink(table, LABELS) as cs:
        for index, ids in enumerate([[1], [], [1, 2]]):
            js.write(_result(index, ids), None)
            cs.write(_result(index, ids), None)
        # then: complete on disk (under the staged name) before close
        lines = StagedFile(jsonl).temp.read_text().splitlines()
        rows = list(csv.DictReader(StagedFile(table).temp.read_text().splitlines()))
        assert not jsonl.exists() and not table.exists()
    assert jsonl.read_text().splitlines() == lines
    assert [json.loads(line)["frame"] for line in lines] == [0, 2, 2]
    assert [int(r["frame"]) for r in rows] == [0, 2, 2]
    assert rows[0]["label"] == "happiness" and float(rows[0]["p_happiness"]) == 0.7
    assert rows[0]["source"] == "clip"
    assert list(rows[0])[:8] == ["frame", "t_s", "track_id", "x0", "y0", "x1", "y1", "score"]


def test_video_sink_writes_every_frame_decodably(tmp_path: Path) -> None:
    # given
    path = tmp_path / "out.mp4"
    # when
    with VideoFileSink(path, fps=23.976, queue_size=2) as sink:
        for index in range(30):
            result = _result(index, [1])
            sink.write(result, result.frame.image)
    # then
    assert _decoded_frames(path) == 30 and sink.frames_written == 30
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (96, 64)
        assert float(stream.average_rate) == pytest.approx(23.976, abs=0.01)


def test_timed_video_keeps_capture_times(tmp_path: Path) -> None:
    # given frames captured at irregular times (a live source that dropped some)
    path = tmp_path / "live.mp4"
    times = [0.0, 0.04, 0.2, 0.25, 0.6]
    # when
    with VideoFileSink(path, fps=25, timed=True) as sink:
        for index, t_s in enumerate(times):
            result = _result(index, [])
            result = FrameResult(
                Frame(index, t_s, result.frame.image), result.tracks, result.predictions, {}
            )
            sink.write(result, result.frame.image)
    # then: playback times follow the capture times
    with av.open(str(path)) as container:
        decoded = [float(f.time) for f in container.decode(video=0)]
    assert decoded == pytest.approx(times, abs=0.002)


def test_video_sink_pads_odd_sizes_and_resizes_later_frames(tmp_path: Path) -> None:
    path = tmp_path / "odd.mp4"
    with VideoFileSink(path, fps=10) as sink:
        sink.write(_result(0, []), np.zeros((63, 95, 3), np.uint8))
        sink.write(_result(1, []), np.zeros((120, 200, 3), np.uint8))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (96, 64)
    assert _decoded_frames(path) == 2


def test_video_sink_reports_an_unwritable_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FerLiveError, match="cannot write"):
        VideoFileSink(blocker / "out.mp4", fps=25)


def test_encoder_failure_is_reported_not_swallowed(tmp_path: Path) -> None:
    # given a file name whose suffix names no container format
    result = _result(0, [])
    # when / then: the encoder thread's error surfaces as one FerLiveError by close()
    with (
        pytest.raises(FerLiveError, match="cannot write video .*out.xyz"),
        VideoFileSink(tmp_path / "out.xyz", fps=25) as sink,
    ):
        sink.write(result, result.frame.image)


def test_image_dir_sink_writes_one_image_per_frame(tmp_path: Path) -> None:
    with ImageDirSink(tmp_path / "annotated") as sink:
        for index in range(2):
            result = _result(index, [1])
            sink.write(result, result.frame.image)
    assert sorted(p.name for p in (tmp_path / "annotated").iterdir()) == [
        "000000_clip.jpg",
        "000001_clip.jpg",
    ]


@pytest.mark.parametrize(
    ("files", "types"),
    [
        ({}, [NullSink]),
        ({"video": "a.mp4", "jsonl": "a.jsonl"}, [VideoFileSink, JsonlSink]),
        ({"csv": "a.csv", "video": "frames"}, [ImageDirSink, CsvSink]),
    ],
)
def test_open_sinks_maps_outputs(tmp_path: Path, files: dict[str, str], types) -> None:
    # given paths inside tmp_path
    paths = {name: tmp_path / name_ for name, name_ in files.items()}
    # when
    sinks = open_sinks(paths, SinkSettings(LABELS, 25.0), window=False)
    for sink in sinks:
        sink.close()
    # then: one sink per format, in the table's order
    assert [type(s) for s in sinks] == types


def test_window_sink_is_added_only_when_asked(tmp_path: Path) -> None:
    sinks = open_sinks({}, SinkSettings(LABELS, 25.0), window=True)
    assert [type(s) for s in sinks] == [WindowSink] and sinks[0].needs_image
