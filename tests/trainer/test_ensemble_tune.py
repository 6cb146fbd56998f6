"""Ensemble merging weights tuned on Valid, scored on Test, and the ``methods ensemble`` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fer_live.errors import ConfigError
from fer_live.trainer.methods.cli import methods_app
from fer_live.trainer.methods.ensemble_tune import (
    load_members,
    merge,
    tune_accuracy,
    tune_ensemble,
    tune_nll,
)

K = 4


def _probs(labels: np.ndarray, right: np.ndarray, seed: int) -> np.ndarray:
    """Probabilities that put 0.7 on the label where ``right`` and on label+1 elsewhere."""
    rng = np.random.default_rng(seed)
    top = np.where(right, labels, (labels + 1) % K)
    p = np.full((len(labels), K), 0.1) + rng.uniform(0, 0.01, (len(labels), K))
    p[np.arange(len(labels)), top] = 0.7
    return p / p.sum(1, keepdims=True)


def _write_run(root: Path, name: str, modes: dict[str, tuple], primary: str) -> Path:
    run = root / name
    run.mkdir()
    for split, index in (("valid", 0), ("test", 1)):
        labels = modes[primary][2 + index]
        arrays = {f"probs_{m}": v[index] for m, v in modes.items()}
        np.savez(run / f"outputs_{split}.npz", labels=labels, embedding=np.zeros((len(labels), 2)),
                 **arrays)  # fmt: skip
    (run / "result.json").write_text(json.dumps({"primary_mode": primary}))
    return run


@pytest.fixture()
def runs(tmp_path: Path) -> list[Path]:
    """A good run (right on 80% of both splits) and a poor one (right on 40%), 100 images each."""
    rng = np.random.default_rng(0)
    yv, yt = rng.integers(0, K, 100), rng.integers(0, K, 100)
    good = [rng.random(100) < 0.8 for _ in range(2)]
    poor = [rng.random(100) < 0.4 for _ in range(2)]
    return [
        _write_run(tmp_path, "good", {
            "H": (_probs(yv, good[0], 1), _probs(yt, good[1], 2), yv, yt),
            "batch": (_probs(yv, poor[0], 3), _probs(yt, poor[1], 4), yv, yt),
        }, "H"),
        _write_run(tmp_path, "poor", {
            "H": (_probs(yv, poor[0], 5), _probs(yt, poor[1], 6), yv, yt),
        }, "H"),
    ]  # fmt: skip


def test_merge_is_the_weighted_average_of_member_probabilities() -> None:
    a, b = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    np.testing.assert_allclose(merge([a, b], np.array([3.0, 1.0])), [[0.75, 0.25]])


def test_tuning_on_valid_moves_the_weight_to_the_better_member(runs: list[Path]) -> None:
    members = load_members(runs)
    assert [m.name for m in members] == ["good:H", "poor:H"]
    valid = [m.valid for m in members]
    labels = members[0].valid_labels
    w_nll = tune_nll(valid, labels)
    assert w_nll.sum() == pytest.approx(1.0) and w_nll[0] > 0.8
    w_acc = tune_accuracy(valid, labels, np.ones(2))
    assert w_acc.sum() == pytest.approx(1.0) and w_acc[0] > w_acc[1]
    # when the record is built, the tuned merge beats the uniform one on Valid
    record = tune_ensemble(members, "acc")
    assert record["tuned"]["valid_acc"] >= record["uniform"]["valid_acc"]
    assert record["tuned"]["valid_acc"] >= record["members"][0]["valid_acc"]
    assert record["transductive"] is False and record["n_test"] == 100
    with pytest.raises(ConfigError, match="objective"):
        tune_ensemble(members, "f1")


def test_all_modes_adds_every_mode_and_flags_batch_as_transductive(runs: list[Path]) -> None:
    members = load_members(runs, primary_mode=False)
    assert sorted(m.name for m in members) == ["good:H", "good:batch", "poor:H"]
    assert tune_ensemble(members, "nll")["transductive"] is True


def test_runs_scored_on_other_images_are_rejected(runs: list[Path], tmp_path: Path) -> None:
    yv = np.zeros(100, np.int64)
    other = _write_run(tmp_path, "other", {"H": (np.eye(K)[yv], np.eye(K)[yv], yv, yv)}, "H")
    with pytest.raises(ConfigError, match="other valid images"):
        load_members([*runs, other])
    with pytest.raises(ConfigError, match="no outputs"):
        load_members([tmp_path])


def test_ensemble_command_prints_a_table_and_writes_the_json(
    runs: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "ensemble.json"
    args = ["ensemble", *map(str, runs), "--primary-mode", "--out", str(out)]
    result = CliRunner().invoke(methods_app, args)
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert [m["run_dir"] for m in record["members"]] == [str(r) for r in runs]
    assert sum(m["weight"] for m in record["members"]) == pytest.approx(1.0)
    assert record["objective"] == "acc"
