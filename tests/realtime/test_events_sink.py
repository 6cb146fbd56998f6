"""The ``--events`` sink: each event on disk as soon as it closes, the open ones at the end
(also of a failed run, in its partial file), and none for still images."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from fer_live.errors import FerLiveError
from fer_live.outputs.base import committed_together
from fer_live.outputs.events import EventsSink
from fer_live.types import Frame, FrameResult, Predictions, Tracks

LABELS = ("neutral", "happiness")
FPS = 10.0


def _result(index: int, smiles: dict[int, float], timed: bool = True) -> FrameResult:
    ids = np.array(sorted(smiles), np.int64)
    n = len(ids)
    tracks = Tracks(np.tile([0.0, 0.0, 9.0, 9.0], (n, 1)), ids, np.ones(n), np.ones(n, bool))
    probs = np.array([[1.0 - smiles[i], smiles[i]] for i in ids], np.float32).reshape(n, 2)
    frame = Frame(index, index / FPS if timed else None, np.zeros((4, 4, 3), np.uint8), "clip")
    return FrameResult(frame, tracks, Predictions(ids, probs))


def _staged_lines(path: Path) -> list[dict]:
    (staged,) = path.parent.glob(f".{path.stem}.*.part{path.suffix}")
    return [json.loads(line) for line in staged.read_text().splitlines()]


def test_an_event_is_on_disk_when_it_closes_and_the_open_one_at_the_end(tmp_path: Path) -> None:
    # given two smiling faces for 1 s; face 2 leaves after frame 9
    path = tmp_path / "ev.jsonl"
    sink = EventsSink(path, LABELS)
    for i in range(10):
        sink.write(_result(i, {1: 0.9, 2: 0.8}), None)
    assert _staged_lines(path) == []
    # when face 2 is gone
    sink.write(_result(10, {1: 0.9}), None)
    # then its event is on disk at once, before the run ends
    (line,) = _staged_lines(path)
    assert (line["track_id"], line["onset_frame"], line["offset_frame"]) == (2, 0, 9)
    assert (line["type"], line["schema"], line["source"]) == ("event", 1, "clip")
    # and the end of the run closes face 1's event
    sink.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [(x["track_id"], x["offset_frame"]) for x in lines] == [(2, 9), (1, 10)]


def test_a_failed_run_keeps_its_events_with_the_open_ones_closed(tmp_path: Path) -> None:
    # given a run that smiles for 1 s and then fails
    path = tmp_path / "ev.jsonl"
    with pytest.raises(FerLiveError), committed_together([EventsSink(path, LABELS)]) as sinks:
        for i in range(10):
            sinks[0].write(_result(i, {1: 0.9}), None)
        raise FerLiveError("the source broke")
    # then: nothing under the name, the open event in the partial file
    assert not path.exists()
    (line,) = [json.loads(x) for x in (tmp_path / "ev.partial.jsonl").read_text().splitlines()]
    assert (line["label"], line["onset_frame"], line["offset_frame"]) == ("happiness", 0, 9)


def test_still_images_have_no_events(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ev.jsonl"
    with caplog.at_level(logging.WARNING), EventsSink(path, LABELS) as sink:
        for i in range(10):
            sink.write(_result(i, {i: 0.95}, timed=False), None)
    assert path.read_text() == ""
    assert caplog.text.count("still images have no time") == 1
