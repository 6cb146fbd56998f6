"""Merge several method runs' probabilities with weights tuned on Valid; report Test (§4.1, §6.4).

Members are runner outputs (``runs/<name>/outputs_{valid,test}.npz``): each run's primary
(deployable) mode, or every mode as its own member. Weights live on the simplex and are tuned on
Valid only: ``nll`` minimizes the merged negative log-likelihood (softmax-parameterized weights,
L-BFGS); ``acc`` starts from that optimum and does a coordinate search that keeps only strict
Valid-accuracy gains. Test is scored once with the tuned weights; the uniform softmax average
(the paper's ensemble) is reported beside it. A member in a ``batch`` mode makes the merge
transductive, and the record says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

from fer_live.errors import ConfigError

OBJECTIVES = ("acc", "nll")


@dataclass(frozen=True)
class Member:
    """One ensemble member: a run directory and one of its inference modes."""

    run_dir: Path
    mode: str
    valid: np.ndarray
    test: np.ndarray
    valid_labels: np.ndarray
    test_labels: np.ndarray

    @property
    def name(self) -> str:
        return f"{self.run_dir.name}:{self.mode}"


def _modes(run_dir: Path, arrays: Any, primary_mode: bool) -> list[str]:
    modes = [key[len("probs_") :] for key in arrays.files if key.startswith("probs_")]
    if not primary_mode:
        return modes
    result_file = run_dir / "result.json"
    if result_file.is_file():
        return [json.loads(result_file.read_text())["primary_mode"]]
    return modes[:1]


def load_members(run_dirs: list[Path], primary_mode: bool = True) -> list[Member]:
    """Members of the runs in ``run_dirs`` (their primary mode, or every mode).

    Raises:
        ConfigError: A run lacks outputs, or the runs were scored on different images.
    """
    members = []
    for run_dir in map(Path, run_dirs):
        files = [run_dir / f"outputs_{split}.npz" for split in ("valid", "test")]
        if not all(f.is_file() for f in files):
            raise ConfigError(f"{run_dir} has no outputs_valid.npz/outputs_test.npz")
        valid, test = (np.load(f, allow_pickle=False) for f in files)
        for mode in _modes(run_dir, valid, primary_mode):
            key = f"probs_{mode}"
            members.append(Member(run_dir, mode, valid[key].astype(np.float64),
                                  test[key].astype(np.float64), valid["labels"],
                                  test["labels"]))  # fmt: skip
    if not members:
        raise ConfigError("an ensemble needs at least one run")
    for member in members[1:]:
        for split in ("valid_labels", "test_labels"):
            if not np.array_equal(getattr(member, split), getattr(members[0], split)):
                raise ConfigError(f"{member.name} was scored on other {split[:-7]} images")
    return members


def merge(probs: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """Σ_m w_m p_m / Σ_m w_m of the members' (N, C) probabilities."""
    w = np.asarray(weights, np.float64)
    return np.tensordot(w / w.sum(), np.stack(probs), axes=1)


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float((probs.argmax(1) == labels).mean())


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())


def _simplex(theta: np.ndarray) -> np.ndarray:
    e = np.exp(theta - theta.max())
    return e / e.sum()


def tune_nll(probs: list[np.ndarray], labels: np.ndarray) -> np.ndarray:
    """Simplex weights minimizing the merged NLL on (``probs``, ``labels``)."""
    if len(probs) == 1:
        return np.ones(1)
    fit = minimize(lambda t: nll(merge(probs, _simplex(t)), labels), np.zeros(len(probs)),
                   method="L-BFGS-B")  # fmt: skip
    return _simplex(fit.x)


def tune_accuracy(
    probs: list[np.ndarray], labels: np.ndarray, start: np.ndarray, rounds: int = 3,
    grid: int = 20,
) -> np.ndarray:  # fmt: skip
    """Coordinate search from ``start``: set one weight to k/grid (others rescaled), keep gains."""
    w = np.asarray(start, np.float64) / np.sum(start)
    best = accuracy(merge(probs, w), labels)
    for _ in range(rounds):
        improved = False
        for m in range(len(w)):
            for value in np.linspace(0.0, 1.0, grid + 1):
                rest = w.sum() - w[m]
                trial = w * ((1.0 - value) / rest) if rest > 0 else np.full_like(w, 0.0)
                trial[m] = value
                if trial.sum() <= 0:
                    continue
                score = accuracy(merge(probs, trial), labels)
                if score > best + 1e-12:
                    best, w, improved = score, trial, True
        if not improved:
            break
    return w / w.sum()


def tune_ensemble(members: list[Member], objective: str = "acc") -> dict[str, Any]:
    """Tune merging weights on Valid and score members, the uniform and the tuned merge.

    Returns:
        A JSON-ready record: ``members`` (run, mode, weight, valid/test accuracy), ``uniform``
        and ``tuned`` (valid/test accuracy and valid NLL), ``objective`` and ``transductive``.

    Raises:
        ConfigError: Unknown objective.
    """
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    valid = [m.valid for m in members]
    test = [m.test for m in members]
    yv, yt = members[0].valid_labels, members[0].test_labels
    weights = tune_nll(valid, yv)
    if objective == "acc":
        weights = tune_accuracy(valid, yv, weights)
    uniform = np.ones(len(members))

    def score(w: np.ndarray) -> dict[str, float]:
        merged_valid = merge(valid, w)
        return {
            "valid_acc": accuracy(merged_valid, yv), "test_acc": accuracy(merge(test, w), yt),
            "valid_nll": nll(merged_valid, yv),
        }  # fmt: skip

    rows = [
        {"run_dir": str(m.run_dir), "name": m.name, "mode": m.mode, "weight": float(w),
         "valid_acc": accuracy(m.valid, yv), "test_acc": accuracy(m.test, yt)}
        for m, w in zip(members, weights, strict=True)
    ]  # fmt: skip
    return {
        "members": rows, "uniform": score(uniform), "tuned": score(weights),
        "objective": objective, "transductive": any(m.mode == "batch" for m in members),
        "n_valid": int(len(yv)), "n_test": int(len(yt)),
    }  # fmt: skip
