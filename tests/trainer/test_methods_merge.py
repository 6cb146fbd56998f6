"""Merging (weights S1/S2, renormalization) and the correcting vote (METHODS.md §4)."""

from __future__ import annotations

import numpy as np
import pytest

from fer_live.errors import ConfigError
from fer_live.trainer.methods.merge import (
    correct_predictions,
    merge_probs,
    similarity_components,
    softmax,
)

P_GUS = np.array([[0.7, 0.3], [0.2, 0.8]])
P_MRE = np.array([[0.1, 0.9], [0.5, 0.5]])
P_DMUE = np.array([[0.4, 0.6], [0.9, 0.1]])


@pytest.mark.parametrize(
    ("members", "weights", "expected"),
    [
        (("gus", "mre", "dmue"), "S1", 0.6 * P_GUS + 0.2 * P_MRE + 0.2 * P_DMUE),
        (("gus", "mre", "dmue"), "S2", 0.4 * P_GUS + 0.3 * P_MRE + 0.3 * P_DMUE),
        (("gus", "mre"), "S1", 0.75 * P_GUS + 0.25 * P_MRE),  # dmue missing: renormalized
        (("gus", "mre"), {"gus": 1.0, "mre": 3.0}, 0.25 * P_GUS + 0.75 * P_MRE),
    ],
)
def test_merge_probs(members: tuple, weights: object, expected: np.ndarray) -> None:
    table = {"gus": P_GUS, "mre": P_MRE, "dmue": P_DMUE}
    merged = merge_probs({m: table[m] for m in members}, weights)  # type: ignore[arg-type]
    np.testing.assert_allclose(merged, expected)
    np.testing.assert_allclose(merged.sum(axis=1), 1.0)


def test_merge_errors() -> None:
    with pytest.raises(ConfigError, match="unknown weight set"):
        merge_probs({"gus": P_GUS}, "S3")
    with pytest.raises(ConfigError, match="no merge weight"):
        merge_probs({"ean": P_GUS}, "S1")
    with pytest.raises(ConfigError, match="shape"):
        merge_probs({"gus": P_GUS, "mre": P_MRE[:1]}, "S1")


def test_sharpened_softmax_uses_unit_logits() -> None:
    np.testing.assert_allclose(softmax([[3.0, 4.0]], tau=0.5), [[0.401312, 0.598688]], atol=1e-6)


def _cluster(center: int, n: int, dim: int = 8, noise: float = 0.01) -> np.ndarray:
    rng = np.random.default_rng(center)
    base = np.zeros(dim)
    base[center] = 1.0
    return base + noise * rng.standard_normal((n, dim))


def test_correcting_vote() -> None:
    # given four tight groups (near-orthogonal to each other) of sizes 4, 3, 2, 3
    feats = np.concatenate([_cluster(0, 4), _cluster(1, 3), _cluster(2, 2), _cluster(3, 3)])
    preds = np.array([1, 1, 1, 2, 0, 1, 2, 3, 4, 5, 5, 6])
    # when corrected at cos > 0.93
    out = correct_predictions(preds, feats, threshold=0.93)
    # then 3/4 > 2/3 unifies group 0; 1/3 and 2/3 (not > 2/3) stay; pairs never vote
    np.testing.assert_array_equal(out, [1, 1, 1, 1, 0, 1, 2, 3, 4, 5, 5, 6])
    np.testing.assert_array_equal(preds[3], 2)  # input untouched


def test_components_respect_groups_and_chain() -> None:
    feats = _cluster(0, 4)
    assert len(np.unique(similarity_components(feats, 0.93))) == 1
    split = similarity_components(feats, 0.93, groups=np.array([0, 0, 1, 1]))
    assert split[0] == split[1] != split[2] == split[3]
    # chaining: a-b and b-c above threshold joins a and c even though cos(a, c) is lower
    chain = np.array([[1.0, 0.0], [np.cos(0.3), np.sin(0.3)], [np.cos(0.6), np.sin(0.6)]])
    assert len(np.unique(similarity_components(chain, 0.95))) == 1
