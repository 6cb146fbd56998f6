"""GUS head: inference modes, isolated = per-sample forward, export parity with the numpy head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fer_live.errors import ConfigError
from fer_live.smooth.gus_head import GusHeadWeights
from fer_live.trainer.methods.gus import GusHead, save_gus_head
from fer_live.trainer.methods.train_gus_head import Embedded, HeadConfig, head_accuracy, train_head

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _clustered(n: int = 12, dim: int = 16, seed: int = 0) -> torch.Tensor:
    """Non-negative embeddings in three tight clusters (so graphs have real edges)."""
    gen = torch.Generator().manual_seed(seed)
    centers = torch.rand(3, dim, generator=gen)
    return (centers[torch.arange(n) % 3] + 0.05 * torch.rand(n, dim, generator=gen)).float()


@pytest.mark.parametrize("norm", ["mlgcn", "kipf"])
def test_isolated_mode_equals_a_per_sample_forward(norm: str) -> None:
    torch.manual_seed(0)
    head = GusHead(16, 5, hidden=8, norm=norm).eval()
    f = _clustered()
    # when every sample is its own graph / when samples go through one at a time
    isolated = head(f, "isolated")
    single = torch.cat([head(f[i : i + 1], "batch") for i in range(len(f))])
    # then both agree, and equal the MLP f -> W1 -> LeakyReLU -> W2 -> FC (operator = 1)
    mlp = head.fc(F.leaky_relu(f @ head.gus1.weight, 0.2) @ head.gus2.weight)
    torch.testing.assert_close(isolated, single, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(isolated, mlp, atol=1e-5, rtol=1e-5)
    # and the batch graph mixes neighbours, so batch mode differs
    assert not torch.allclose(head(f, "batch"), isolated, atol=1e-4)


def test_window_mode_is_a_batch_graph_per_group() -> None:
    torch.manual_seed(0)
    head = GusHead(16, 5, hidden=8).eval()
    f, groups = _clustered(), torch.tensor([0] * 5 + [1] * 7)
    windowed = head(f, "window", groups)
    per_group = torch.cat([head(f[:5], "batch"), head(f[5:], "batch")])
    torch.testing.assert_close(windowed, per_group, atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="group id"):
        head(f, "window")
    with pytest.raises(ConfigError, match="unknown GUS mode"):
        head(f, "transductive")


def test_training_thresholds_are_random_and_graph_detached() -> None:
    torch.manual_seed(0)
    head = GusHead(16, 5, hidden=8, drop_rate=0.0).train()
    f = _clustered().requires_grad_(True)
    outs = {tuple(head(f, "batch")[0].detach().numpy().round(5)) for _ in range(8)}
    assert len(outs) > 1  # a fresh threshold per layer per forward changes the graph
    head(f, "batch").sum().backward()
    assert f.grad is not None and head.gus1.weight.grad is not None


def test_export_matches_the_numpy_head(tmp_path: Path) -> None:
    torch.manual_seed(0)
    head = GusHead(16, 5, hidden=8, norm="mlgcn", eval_threshold=0.9).eval()
    f = _clustered()
    path = save_gus_head(head, tmp_path / "m.gus.npz", {"base_name": "m.onnx"})
    weights = GusHeadWeights.load(path)
    assert (weights.norm, weights.threshold, weights.embedding_dim) == ("mlgcn", 0.9, 16)
    expected = head(f, "batch").detach().numpy()
    np.testing.assert_allclose(weights.logits(f.numpy()), expected, atol=1e-4)
    unit = f.numpy() / np.linalg.norm(f.numpy(), axis=1, keepdims=True)
    last = weights.last_logits(unit, weights.project(f.numpy()))
    np.testing.assert_allclose(last, expected[-1], atol=1e-4)


def test_head_training_lowers_the_loss_and_learns() -> None:
    # given separable embeddings (class = cluster); when the head trains a few epochs
    f = _clustered(n=300).numpy()
    labels = np.arange(300) % 3
    data = Embedded(f, np.zeros((300, 3), np.float32), labels, np.eye(3, dtype=np.float32)[labels],
                    ("a", "b", "c"))  # fmt: skip
    head, losses = train_head(data, HeadConfig(hidden=16, epochs=8, batch_size=64, lr=1e-2))
    # then the loss falls and the isolated accuracy is high
    assert losses[-1] < losses[0]
    assert head_accuracy(head, data, "isolated") > 0.9
