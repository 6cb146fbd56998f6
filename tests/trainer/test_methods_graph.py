"""Graph primitives (METHODS.md §0.3) on small hand-checked matrices, torch and numpy twins."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fer_live.errors import ConfigError
from fer_live.smooth import gus_head as npg
from fer_live.trainer.methods import graph_ops as tg

PAIR = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], np.float32)  # nodes 0-1 linked, 2 alone
# Directed: node 0 receives from 1 and 2 (only masks make A asymmetric, but the op must transpose).
DIRECTED = np.array([[1, 1, 1], [0, 1, 0], [0, 0, 1]], np.float32)
S = 1.0 / np.sqrt(2.5)


@pytest.mark.parametrize(
    ("adj", "expected"),
    [
        (PAIR, [[2 / 3, 1 / 3, 0], [1 / 3, 2 / 3, 0], [0, 0, 1]]),
        (np.eye(1, dtype=np.float32), [[1.0]]),
    ],
)
def test_kipf_norm_hand_checked(adj: np.ndarray, expected: list) -> None:
    # given a binary graph with unit diagonal; when renormalized (degrees from A + I)
    got_t = tg.kipf_norm(torch.from_numpy(adj)).numpy()
    got_n = npg.kipf_norm(adj)
    # then both twins give the hand-computed operator
    np.testing.assert_allclose(got_t, expected, atol=1e-6)
    np.testing.assert_allclose(got_n, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("adj", "expected"),
    [
        (PAIR, [[5 / 6, 1 / 6, 0], [1 / 6, 5 / 6, 0], [0, 0, 1]]),
        (DIRECTED, [[0.75, 0, 0], [0.25 * S, 1, 0], [0.25 * S, 0, 1]]),
        (np.eye(1, dtype=np.float32), [[1.0]]),
    ],
)
def test_mlgcn_norm_hand_checked(adj: np.ndarray, expected: list) -> None:
    # given column-normalize x 0.5, + I, row-sum degrees and the transpose of ML-GCN
    got_t = tg.mlgcn_norm(torch.from_numpy(adj), 0.5).numpy()
    got_n = npg.mlgcn_norm(adj, 0.5)
    np.testing.assert_allclose(got_t, expected, atol=1e-5)
    np.testing.assert_allclose(got_n, expected, atol=1e-5)


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [(0.5, [[1, 1, 0], [1, 1, 1], [0, 1, 1]]), (0.8, np.eye(3)), (-0.5, np.ones((3, 3)))],
)
def test_threshold_adjacency(threshold: float, expected: list) -> None:
    # given features whose cosines are cos(0,1) = cos(1,2) = 0.707 and cos(0,2) = 0
    h = np.array([[1, 0], [1, 1], [0, 1]], np.float32)
    got_t = tg.threshold_adjacency(torch.from_numpy(h), threshold).numpy()
    got_n = npg.threshold_adjacency(npg.unit_rows(h), threshold)
    np.testing.assert_array_equal(got_t, expected)
    np.testing.assert_array_equal(got_n, expected)


def test_adjacency_mask_keeps_unit_diagonal_and_detaches() -> None:
    h = torch.ones(3, 4, requires_grad=True)
    adj = tg.threshold_adjacency(h, 0.5, tg.group_mask(torch.tensor([0, 0, 1])))
    assert not adj.requires_grad
    np.testing.assert_array_equal(adj.numpy(), PAIR)


def test_unknown_norm_raises() -> None:
    with pytest.raises(ConfigError, match="unknown graph norm"):
        tg.normalize_adjacency(torch.eye(2), "sym")
