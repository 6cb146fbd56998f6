"""GUS head fine-tuning on windows of one face's frames (``fer-train methods gus-windows``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fer_live.smooth.gus_head import GusHeadWeights, write_head_file
from fer_live.trainer.methods.window_head import (
    WindowConfig,
    finetune_windows,
    head_from_weights,
    sample_windows,
    weights_of,
)

D, H, C = 6, 5, 3


def _head_file(path: Path) -> Path:
    rng = np.random.default_rng(0)
    arrays = {
        "w1": rng.uniform(-0.5, 0.5, (D, H)), "w2": rng.uniform(-0.5, 0.5, (H, H)),
        "fc_w": rng.uniform(-1, 1, (C, H)), "fc_b": np.zeros(C),
    }  # fmt: skip
    return write_head_file(path, arrays, norm="mlgcn", p=0.5, threshold=0.5, base_name="m.onnx")


def test_windows_have_the_asked_shapes_changes_and_short_fills() -> None:
    cfg = WindowConfig(window=6, views=4, change_p=0.5, short_p=0.5)
    images, views, groups = sample_windows(50, 4, cfg, 400, np.random.default_rng(1))
    lengths = np.bincount(groups)
    assert len(lengths) == 400 and lengths.max() == 6 and lengths.min() >= 1
    assert 0.35 < np.mean(lengths < 6) < 0.65  # about short_p of the windows are partly filled
    assert views.max() < 4 and images.max() < 50
    changed = [len(set(images[groups == g])) > 1 for g in range(400)]
    assert 0.2 < np.mean(changed) < 0.6  # about change_p of the windows of 2+ frames
    for g in range(400):  # an image change leaves the newest frames to one image, oldest first
        owners = images[groups == g]
        assert (np.diff((owners != owners[-1]).astype(int)) <= 0).all()


def test_torch_head_round_trips_the_file_weights(tmp_path: Path) -> None:
    weights = GusHeadWeights.load(_head_file(tmp_path / "h.gus.npz"))
    back = weights_of(head_from_weights(weights), weights)
    for name in ("w1", "w2", "fc_w", "fc_b"):
        np.testing.assert_array_equal(getattr(back, name), getattr(weights, name))
    # and the torch head in window mode equals the runtime graph of a window (newest node)
    rng = np.random.default_rng(2)
    feats = (rng.random((5, D)) + 0.5).astype(np.float32)
    head = head_from_weights(weights).eval()
    torch_logits = head(torch.from_numpy(feats), "window", torch.zeros(5, dtype=torch.long))
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    runtime = weights.last_logits(unit, weights.project(feats))
    np.testing.assert_allclose(torch_logits[-1].detach().numpy(), runtime, atol=1e-5)


def test_finetuning_learns_separable_windows(tmp_path: Path) -> None:
    # given frames of 3 classes whose embeddings point different ways, and a random head
    rng = np.random.default_rng(3)
    centers = np.eye(C, D) * 3 + 0.2
    labels = rng.integers(C, size=120)
    emb = centers[labels][:, None, :] + 0.3 * rng.standard_normal((120, 4, D))
    data = (emb.astype(np.float32), labels.astype(np.int64))
    cfg = WindowConfig(window=5, views=4, epochs=6, batch_windows=16, lr=0.05, threshold=0.5)
    # when
    _, report = finetune_windows(_head_file(tmp_path / "h.gus.npz"), data, data, cfg)
    # then Valid windows' newest frames are read better than by the random head
    history = report["valid_newest_acc_by_epoch"]
    assert max(history[1:]) > history[0] and max(history) > 0.9
