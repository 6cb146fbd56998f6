"""Decision-rule fitting: temperature, prior-correction offsets, and the card it writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_live.infer.backends import open_backend
from fer_live.infer.card import read_sidecar
from fer_live.trainer.calibrate import (
    expected_calibration_error,
    fit_offsets,
    fit_temperature,
    score,
)
from fer_live.trainer.evaluate import load_checkpoint
from fer_live.trainer.export import export_torchscript
from fer_live.trainer.model_file_eval import calibrate_model


def _sampled(n: int, temperature: float, prior: np.ndarray, seed: int = 0):
    """Logits whose labels are drawn from softmax(logits / temperature + log prior)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, (n, len(prior))).astype(np.float32)
    z = logits / temperature + np.log(prior)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(len(prior), p=row) for row in p])
    return logits, labels


def test_temperature_is_recovered_from_calibrated_samples() -> None:
    # given labels drawn at temperature 2 (uniform prior)
    logits, labels = _sampled(6000, 2.0, np.full(4, 0.25))
    # when / then
    assert fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.1)


def test_prior_correction_raises_macro_f1_within_the_accuracy_budget() -> None:
    # given a model biased towards class 0 by the training prior (logits carry log prior)
    prior = np.array([0.6, 0.25, 0.1, 0.05])
    logits, labels = _sampled(4000, 1.0, np.full(4, 0.25), seed=1)
    biased = logits + np.log(prior)
    plain = score(labels, biased.argmax(axis=1), 4)
    # when
    offsets, alpha = fit_offsets(biased, labels, prior, max_acc_drop=0.005)
    fitted = score(labels, (biased + offsets).argmax(axis=1), 4)
    # then: the rare classes gain, accuracy stays within half a point
    assert alpha > 0.5 and offsets[0] == 0.0 and offsets[3] > offsets[1] > 0
    assert fitted.macro_f1 > plain.macro_f1 + 0.02
    assert fitted.accuracy >= plain.accuracy - 0.005
    assert fitted.balanced_accuracy > plain.balanced_accuracy


def test_a_guard_set_bounds_the_correction() -> None:
    # given a biased model, and a second set (the product's path) where the rare classes are
    # already over-predicted, so any correction costs accuracy there
    prior = np.array([0.6, 0.25, 0.1, 0.05])
    logits, labels = _sampled(4000, 1.0, np.full(4, 0.25), seed=1)
    biased = logits + np.log(prior)
    guard_logits, guard_labels = _sampled(2000, 1.0, prior, seed=2)
    guard = (guard_logits - np.log(prior), guard_labels)
    # when
    _, free = fit_offsets(biased, labels, prior)
    _, guarded = fit_offsets(biased, labels, prior, guards=[guard])
    # then: the guard holds its accuracy, so alpha shrinks
    assert guarded < free
    base = score(guard[1], guard[0].argmax(axis=1), 4).accuracy
    direction = -(np.log(prior) - np.log(prior[0]))
    shifted = score(guard[1], (guard[0] + guarded * direction).argmax(axis=1), 4).accuracy
    assert shifted >= base - 0.005


def test_ece_is_zero_for_perfect_confidence_and_large_for_overconfidence() -> None:
    labels = np.array([0, 1, 0, 1])
    sure_right = np.eye(2)[labels]
    assert expected_calibration_error(sure_right, labels) == 0.0
    assert expected_calibration_error(np.eye(2)[1 - labels] * 0.99 + 0.005, labels) > 0.9


def test_calibrate_writes_the_rule_into_every_file_of_the_model(
    tiny_checkpoint: Path, tiny_onnx: Path, ferplus_root: Path, one_torch_thread
) -> None:
    # given the tiny model exported to ONNX and TorchScript
    model, card, _ = load_checkpoint(tiny_checkpoint)
    path = tiny_onnx
    export_torchscript(model, card, path)
    # when: fit on real FERPlus Valid through ONNX Runtime
    report = calibrate_model(path, ferplus_root, product_guard=False)
    # then: the report has every split and rule; each file carries the same rule
    assert set(report["valid"]) == set(report["test"]) == {"off", "temperature", "on"}
    for row in report["test"].values():
        assert {"accuracy", "macro_f1", "balanced_accuracy", "recall", "ece"} <= set(row)
    rule = read_sidecar(path).decision
    assert rule.temperature == pytest.approx(report["rule"]["temperature"])
    assert rule.fit["n"] == 3191
    on, off = report["valid"]["on"], report["valid"]["off"]
    assert on["accuracy"] >= off["accuracy"] - 0.005 - 1e-9
    for twin in (path, path.with_suffix(".pt")):
        with open_backend(twin) as backend:
            assert backend.card.decision == rule
    json.dumps(report)


def test_calibrate_can_leave_test_unread(
    tiny_onnx: Path, ferplus_root: Path, one_torch_thread, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a model still being chosen, and a record of the splits read
    import fer_live.trainer.model_file_eval as mfe

    read: list[str] = []
    real = mfe.split_logits

    def recording(path, card, data_root, split, tta=False):
        read.append(split)
        return real(path, card, data_root, split, tta)

    monkeypatch.setattr(mfe, "split_logits", recording)
    # when it is calibrated without Test
    report = calibrate_model(tiny_onnx, ferplus_root, product_guard=False, read_test=False)
    # then Test was never read and the report says so
    assert read == ["valid"]
    assert "test" not in report and "Test not read" in report["protocol"]
    assert read_sidecar(tiny_onnx).decision.fit["n"] == 3191
