"""ULC-AG: gamma weights, rank loss, AU adjacency, templates and relabeling, end-to-end run."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fer_live.errors import ConfigError
from fer_live.trainer.methods.au_labels import AU_LIST, au_targets, build_au_cache, load_au_cache
from fer_live.trainer.methods.graph_ops import row_norm
from fer_live.trainer.methods.runner import MethodConfig, run_method
from fer_live.trainer.methods.ulc import (
    TemplateBank,
    UlcNet,
    au_loss,
    class_weights,
    conditional_adjacency,
    confirmed,
    high_confidence,
    ramps,
    rank_loss,
)
from fer_live.trainer.models.registry import create_model


@pytest.fixture(scope="module")
def au_cache(tmp_path_factory: pytest.TempPathFactory, ferplus_root: Path) -> Path:
    """FaceLandmarker over the first 96 real FERPlus train images."""
    pytest.importorskip("mediapipe")
    return build_au_cache(ferplus_root, "train", cache_dir=tmp_path_factory.mktemp("au"), limit=96)


def test_class_weights_from_batch_counts() -> None:
    gamma = class_weights(torch.tensor([0, 0, 1, 2]), 4)
    assert gamma.tolist() == pytest.approx([0.5, 0.75, 0.75, 1.0])


def test_weighted_ce_is_a_per_sample_temperature() -> None:
    # given logits, alpha and gamma for two samples of classes 0 and 1
    logits = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    labels = torch.tensor([0, 1])
    alpha = torch.tensor([0.5, 1.0])
    gamma = class_weights(labels, 2)  # [0.5, 0.5]
    scaled = (alpha * gamma[labels])[:, None] * logits
    # then CE equals the hand value: sample 0 logits *0.25 -> [0.5, 0], sample 1 -> [0.5, 0.5]
    expected = (-math.log(math.exp(0.5) / (math.exp(0.5) + 1)) + math.log(2)) / 2
    assert F.cross_entropy(scaled, labels).item() == pytest.approx(expected)
    assert torch.equal(scaled.argmax(1), logits.argmax(1))


def test_rank_loss_by_hand() -> None:
    # phi = 0.8 of 5 samples: the top 4 are the high group
    wide = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.1])
    assert rank_loss(wide, 0.8, 0.15).item() == 0.0  # 0.75 - 0.1 > theta
    alpha = torch.tensor([0.5, 0.5, 0.5, 0.45, 0.5], requires_grad=True)
    loss = rank_loss(alpha, 0.8, 0.15)
    assert loss.item() == pytest.approx(0.15 - (0.5 - 0.45))
    loss.backward()
    assert alpha.grad[3].item() == pytest.approx(1.0)  # the low sample is pushed down
    assert alpha.grad[0].item() == pytest.approx(-0.25)  # the high ones up
    assert high_confidence(wide, 0.8).tolist() == [True, True, True, True, False]


def test_au_loss_weights_each_sample_by_alpha() -> None:
    logits = torch.zeros(2, 3)
    z = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    loss = au_loss(logits, z, torch.tensor([1.0, 0.5]))
    assert loss.item() == pytest.approx((3 * math.log(2) * 1.0 + 3 * math.log(2) * 0.5) / 2)


def test_ramps_follow_the_seed_form() -> None:
    assert ramps(0.0, 0.5) == pytest.approx((math.exp(-1), 1.0))
    assert ramps(0.5, 0.5) == pytest.approx((1.0, 1.0))
    assert ramps(1.0, 0.5) == pytest.approx((1.0, math.exp(-0.25)))


def test_conditional_adjacency_by_hand() -> None:
    # given AU labels of 4 images over 3 AUs: AU0 in 3, AU1 in 2 (always with AU0), AU2 never
    z = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 0], [0, 0, 0]])
    adj = conditional_adjacency(z)
    # then A_pq = P(p | q): P(0|1) = 2/2, P(1|0) = 2/3, and the empty column is the unit vector
    assert torch.allclose(adj, torch.tensor([[1, 1, 0], [2 / 3, 1, 0], [0, 0, 1]]))
    assert torch.allclose(row_norm(adj).sum(1), torch.ones(3))


def test_au_adjacency_of_real_pseudo_labels_is_a_conditional_probability(au_cache: Path) -> None:
    cache = load_au_cache(au_cache)
    z = torch.from_numpy(au_targets(cache, cache.labels, ("neutral", "happiness", "surprise",
                         "sadness", "anger", "disgust", "fear", "contempt")))  # fmt: skip
    adj = conditional_adjacency(z >= 0.5)
    occ = (z >= 0.5).sum(0).double()
    both = (z >= 0.5).double().T @ (z >= 0.5).double()
    assert adj.shape == (len(AU_LIST), len(AU_LIST))
    assert torch.all((adj >= 0) & (adj <= 1)) and torch.all(adj.diagonal() == 1)
    seen = occ > 0
    # OCC(p and q) = P(p | q) OCC(q), and Bayes: P(p|q) OCC(q) = P(q|p) OCC(p)
    joint = adj.double() * occ[None, :]
    assert torch.allclose(joint[:, seen], both[:, seen], atol=1e-4)
    assert torch.allclose(joint[seen][:, seen], joint[seen][:, seen].T, atol=1e-4)
    assert not torch.allclose(adj, adj.T)  # asymmetric on real labels


def test_relabel_rule_on_a_hand_built_batch() -> None:
    # given templates of classes 0 and 1 (class 2 never seen)
    bank = TemplateBank(3, 2)
    bank.update(torch.tensor([[2.0, 0.0], [0.0, 4.0]]), torch.tensor([0.5, 0.25]),
                torch.tensor([0, 1]))  # fmt: skip
    assert bank.templates.tolist() == [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    s = torch.tensor([[0.1, 1.0], [1.0, 0.1], [1.0, 1.0], [0.0, 1.0], [0.2, 1.0]])
    labels = torch.tensor([0, 0, 2, 1, 0])
    # when the low-confidence samples are judged
    new = bank.relabel(s, labels, margin=0.0)
    # then: closer to class 1 -> 1; own template closest -> kept; unseen own class -> kept;
    assert new.tolist() == [1, 0, 2, 1, 1]
    # and a margin above the gain keeps the label (SP_0 - SP_1 of sample 4 is about 0.8)
    assert bank.relabel(s[4:], labels[4:], margin=0.9).tolist() == [0]


def test_agreement_guard_keeps_only_relabels_the_classifier_confirms() -> None:
    old = torch.tensor([0, 1, 2, 3])
    new = torch.tensor([5, 1, 4, 6])  # three proposed moves (sample 1 keeps its label)
    predicted = torch.tensor([5, 2, 2, 6])  # the classifier confirms the moves of 0 and 3
    assert confirmed(new, old, predicted).tolist() == [5, 1, 2, 6]


def test_centered_relabeling_ignores_a_direction_shared_by_all_templates() -> None:
    # given collinear templates (cosine 1, as raw AU logits give: a shared offset)
    bank = TemplateBank(2, 2)
    bank.update(torch.tensor([[1.0, 0.0], [2.0, 0.0]]), torch.ones(2), torch.tensor([0, 1]))
    s, labels = torch.tensor([[2.2, 0.0]]), torch.tensor([0])
    # then the literal rule cannot tell the classes apart; measured from the mean template it can
    assert bank.relabel(s, labels).tolist() == [0]
    assert bank.relabel(s, labels, center=True).tolist() == [1]


def test_template_bank_keeps_an_ema_per_class() -> None:
    bank = TemplateBank(2, 1, momentum=0.9)
    bank.update(torch.tensor([[1.0]]), torch.tensor([1.0]), torch.tensor([0]))
    bank.update(torch.tensor([[2.0], [3.0]]), torch.tensor([1.0, 1.0]), torch.tensor([1, 0]))
    assert torch.allclose(bank.templates, torch.tensor([[0.9 + 0.3], [2.0]]))


def test_detached_au_branch_does_not_train_the_backbone(one_torch_thread: None) -> None:
    torch.manual_seed(0)
    net = UlcNet(create_model("mobilenetv2", 8, 1, 32, width_mult=0.25), len(AU_LIST), 8, 8)
    x = torch.randn(4, 1, 32, 32)
    for detach, reaches in ((True, False), (False, True)):
        net.zero_grad()
        out = net.branches(x, detach_au=detach)
        out.au_logits.sum().backward()
        grad = net.backbone.body[0][0].weight.grad
        assert (grad is not None and grad.abs().sum() > 0) == reaches
        assert net.au_nodes[0].weight.grad.abs().sum() > 0


def _cfg(tmp_path: Path, ckpt: Path, root: Path, **options: str) -> MethodConfig:
    return MethodConfig(
        "ulc", method="ulc", init=str(ckpt), input_size=32, epochs=1, batch_size=32,
        max_train=96, max_eval=64, noise=0.3, out_dir=str(tmp_path), data_root=str(root),
        options=options,
    )  # fmt: skip


def test_missing_or_short_cache_raises_with_the_build_command(
    tmp_path: Path, tiny_checkpoint: Path, ferplus_root: Path, au_cache: Path
) -> None:
    missing = _cfg(tmp_path, tiny_checkpoint, ferplus_root, au_cache=str(tmp_path / "no.npz"))
    with pytest.raises(ConfigError, match="fer-train methods au-labels"):
        run_method(missing)
    cfg = _cfg(tmp_path, tiny_checkpoint, ferplus_root, au_cache=str(au_cache))
    short = replace(cfg, max_train=128)  # the cache holds only the first 96 images
    with pytest.raises(ConfigError, match="does not match"):
        run_method(short)


def test_ulc_run_relabels_and_reports_au_coverage(
    tmp_path: Path, tiny_checkpoint: Path, ferplus_root: Path, au_cache: Path,
    one_torch_thread: None,
) -> None:  # fmt: skip
    # given ULC-AG with the switch (relabeling on) at half of a 1-epoch run
    cfg = _cfg(tmp_path, tiny_checkpoint, ferplus_root, au_cache=str(au_cache), ramp="0.5")
    # when it runs on 96 real images with 30 % noise
    result = run_method(cfg)
    # then the plain head is scored, the AU source is reported, and relabels reached the targets
    summary = result["method_summary"]
    found = load_au_cache(au_cache).found
    assert set(result["test"]) == {"H"}
    assert summary["au_mesh_coverage"] == pytest.approx(float(np.mean(found)), abs=1e-4)
    assert summary["au_emfacs_fallback"] == int((~found).sum())
    assert result["labels"]["relabeled"] <= summary["relabel_events"]
    assert summary["relabel_events"] > 0
