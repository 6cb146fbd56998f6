"""A shipped model file scored as a method run: what ensembles read back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from fer_live.errors import ConfigError
from fer_live.trainer.export import read_onnx_card
from fer_live.trainer.methods.ensemble_tune import load_members
from fer_live.trainer.methods.score_model import MODE, score_model_file
from fer_live.trainer.model_file_eval import split_logits


def test_model_file_scores_as_a_run_ensembles_can_read(
    tiny_onnx: Path, ferplus_root: Path, tmp_path: Path, one_torch_thread
) -> None:
    # given the tiny model exported to ONNX
    path = tiny_onnx
    card = read_onnx_card(path)
    # when: scored as runs, plain and with the mirrored face
    plain = score_model_file(path, "plain", ferplus_root, tmp_path / "runs")
    flipped = score_model_file(path, "flipped", ferplus_root, tmp_path / "runs", tta=True)
    # then: the probabilities are the softmax of the file's logits on real FERPlus Test
    logits, labels, _ = split_logits(path, card, ferplus_root, "test")
    with np.load(tmp_path / "runs" / "plain" / "outputs_test.npz") as saved:
        probs = saved[f"probs_{MODE}"]
        assert np.array_equal(saved["labels"], labels)
    assert np.allclose(probs, softmax(logits, axis=1), atol=1e-6)
    assert plain["test"][MODE] == pytest.approx(float((probs.argmax(1) == labels).mean()))
    result = json.loads((tmp_path / "runs" / "plain" / "result.json").read_text())
    assert result["primary_mode"] == MODE
    # and the flip is averaged in only when asked for
    mirrored, _, _ = split_logits(path, card, ferplus_root, "test", tta=True)
    assert not np.array_equal(mirrored, logits)
    with np.load(tmp_path / "runs" / "flipped" / "outputs_test.npz") as saved:
        assert np.allclose(np.log(saved[f"probs_{MODE}"]), log_softmax(mirrored, axis=1), atol=1e-5)
    assert plain["model_file"]["flip_tta"] is False and flipped["model_file"]["flip_tta"] is True
    # and both load as ensemble members, on the same images
    members = load_members([tmp_path / "runs" / "plain", tmp_path / "runs" / "flipped"])
    assert [m.name for m in members] == [f"plain:{MODE}", f"flipped:{MODE}"]
    assert members[0].valid.shape == (3191, len(card.labels))


def test_scoring_refuses_what_is_not_an_onnx_model(tmp_path: Path, ferplus_root: Path) -> None:
    (tmp_path / "m.pt").write_bytes(b"x")
    with pytest.raises(ConfigError, match="not an ONNX model file"):
        score_model_file(tmp_path / "m.pt", "x", ferplus_root, tmp_path / "runs")
    with pytest.raises(ConfigError, match="not an ONNX model file"):
        score_model_file(tmp_path / "missing.onnx", "x", ferplus_root, tmp_path / "runs")
