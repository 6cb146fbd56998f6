"""SCL + CUEM: queue, supervised contrastive loss, CUEM relabeling, λ schedule, momentum keys."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from fer_live.trainer.checkpoint_io import read_checkpoint
from fer_live.trainer.methods.runner import MethodConfig, run_method
from fer_live.trainer.methods.scl import (
    KeyEncoder,
    LabeledQueue,
    SclNet,
    cuem_relabel,
    cuem_scores,
    projection_head,
    scl_lambda,
    supcon_loss,
)
from fer_live.trainer.models.registry import create_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_queue_enqueues_in_fifo_order_with_labels_and_wraps() -> None:
    # given a queue of 5 two-dimensional keys
    queue = LabeledQueue(5, 2)
    keys = torch.arange(12, dtype=torch.float32).view(6, 2)
    # when 3 then 3 keys arrive
    queue.enqueue(keys[:3], torch.tensor([0, 1, 2]))
    assert not queue.full and queue.contents()[1].tolist() == [0, 1, 2]
    queue.enqueue(keys[3:], torch.tensor([3, 4, 5]))
    # then the oldest entry (label 0) was overwritten by the newest (label 5), keys follow labels
    stored, labels = queue.contents()
    assert queue.full and queue.ptr == 1
    assert labels.tolist() == [5, 1, 2, 3, 4]
    assert stored[0].tolist() == [10.0, 11.0] and stored[4].tolist() == [8.0, 9.0]


def test_supcon_loss_matches_a_hand_computed_case() -> None:
    # given one query [1, 0] of class 0 and keys [1,0] (0), [0,1] (1), [-1,0] (0), tau = 0.5
    q = torch.tensor([[1.0, 0.0]])
    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    # similarities / tau: 2 (positive), 0 (the only negative), -2 (positive)
    expected = 0.5 * (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(2)))
    got = supcon_loss(q, keys, torch.tensor([0]), torch.tensor([0, 1, 0]), tau=0.5)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_supcon_loss_excludes_other_positives_and_averages_queries() -> None:
    # adding a second positive never enters the first positive's denominator
    q = F.normalize(torch.tensor([[1.0, 0.2], [0.1, 1.0]]), dim=1)
    keys = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]]), dim=1)
    qy, ky = torch.tensor([0, 1]), torch.tensor([0, 1, 0])
    s = q @ keys.T / 0.1
    per_query = []
    for i in range(2):
        pos = [j for j in range(3) if ky[j] == qy[i]]
        negs = torch.tensor([float(s[i, j]) for j in range(3) if ky[j] != qy[i]])
        terms = [float(s[i, p]) - math.log(math.exp(float(s[i, p])) + float(negs.exp().sum()))
                 for p in pos]  # fmt: skip
        per_query.append(-sum(terms) / len(terms))
    got = supcon_loss(q, keys, qy, ky, tau=0.1)
    assert float(got) == pytest.approx(sum(per_query) / 2, rel=1e-5)


def test_cuem_scores_are_class_means_and_absent_classes_are_minus_inf() -> None:
    q = torch.tensor([[1.0, 0.0]])
    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    scores = cuem_scores(q, keys, torch.tensor([1, 0, 1]), num_classes=3)
    assert scores[0, :2].tolist() == pytest.approx([0.0, 0.8])
    assert scores[0, 2] == float("-inf")


@pytest.mark.parametrize(
    ("own", "other", "theta", "relabeled"),
    [
        (0.5, 0.65, 0.1, True),
        (0.5, 0.55, 0.1, False),
        (0.5, 0.625, 0.125, False),  # u == theta exactly (binary fractions): not above
        (0.7, 0.2, 0.1, False),
    ],
)
def test_cuem_relabels_only_above_theta(
    own: float, other: float, theta: float, relabeled: bool
) -> None:
    # given S_cos with the labelled class 0 at ``own`` and class 1 at ``other``
    scores = torch.tensor([[own, other, float("-inf")]])
    labels, changed = cuem_relabel(scores, torch.tensor([0]), theta=theta)
    assert bool(changed[0]) is relabeled
    assert int(labels[0]) == (1 if relabeled else 0)


def test_lambda_schedule_falls_to_zero_then_jumps_to_beta() -> None:
    assert scl_lambda(1) == pytest.approx(1 - 1 / 30)
    assert scl_lambda(15) == pytest.approx(0.5)
    assert scl_lambda(30) == 0.0
    assert scl_lambda(31) == 1e-4


def test_key_encoder_follows_the_query_encoder_by_momentum() -> None:
    torch.manual_seed(0)
    base = create_model("mobilenetv2", 8, 1, 32, width_mult=0.25)
    model = SclNet(base, projection_head(base.num_features, 16, 8))
    key = KeyEncoder(model)
    start = next(key.proj.parameters()).clone()
    with torch.no_grad():
        next(model.proj.parameters()).add_(1.0)
    key.follow(model, momentum=0.75)
    torch.testing.assert_close(next(key.proj.parameters()), start + 0.25)
    assert all(not p.requires_grad for p in key.parameters())
    z = key(torch.randn(3, 1, 32, 32))
    torch.testing.assert_close(z.norm(dim=1), torch.ones(3))


def test_scl_run_with_cuem_end_to_end(
    tmp_path: Path, tiny_checkpoint: Path, ferplus_root: Path
) -> None:
    # given a 64-entry queue that fills after two steps, and CUEM from the first epoch
    cfg = MethodConfig(
        "scl", method="scl", init=str(tiny_checkpoint), input_size=32, epochs=1,
        batch_size=32, max_train=96, max_eval=64, out_dir=str(tmp_path), noise=0.3,
        data_root=str(ferplus_root), options={"queue": "64", "cuem_start": "1", "hidden": "32"},
    )  # fmt: skip
    result = run_method(cfg)
    summary = result["method_summary"]
    # then both ARM modes are scored, CUEM saw the last batch, and nothing was persisted
    assert set(result["test"]) == {"isolated", "batch_transductive"}
    assert summary["queue_filled"] == 64 and summary["cuem_seen"] == 32
    assert result["labels"]["relabeled"] == 0
    saved = read_checkpoint(tmp_path / "scl" / "best_method.pt")["model"]
    assert any(k.startswith("proj.") for k in saved) and any(".head.conv" in k for k in saved)
