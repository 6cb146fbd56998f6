"""ABAW4 recipe: smoothed weighted CE, class-balanced up-sampling, RandAugment, DFT."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from fer_live.errors import ConfigError
from fer_live.infer.card import ModelCard
from fer_live.trainer.checkpoint_io import read_checkpoint
from fer_live.trainer.data.tensors import load_split
from fer_live.trainer.methods.abaw import (
    RANDAUGMENT_OPS,
    AbawMethod,
    DeviationNet,
    balanced_class_weights,
    first_occurrences,
    rand_augment,
    smooth_targets,
    upsample_pool,
    weighted_smoothed_ce,
)
from fer_live.trainer.methods.mixed_loss import make_loss
from fer_live.trainer.methods.protocol import Batch, Targets
from fer_live.trainer.methods.runner import MethodConfig, run_method
from fer_live.trainer.models.registry import create_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_label_smoothing_targets_match_the_hand_values() -> None:
    # given one-hot targets over K = 4 and alpha = 0.2
    onehot = F.one_hot(torch.tensor([2, 0]), 4).float()
    # when smoothed
    smoothed = smooth_targets(onehot, 0.2)
    # then the true class gets 0.8 + 0.05 and every other class 0.05
    assert smoothed[0].tolist() == pytest.approx([0.05, 0.05, 0.85, 0.05])
    assert smoothed[1].tolist() == pytest.approx([0.85, 0.05, 0.05, 0.05])


def test_weighted_smoothed_ce_is_pytorchs_weighted_label_smoothing() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=gen)
    labels = torch.tensor([0, 1, 2, 3, 1, 2])
    weights = torch.tensor([1.0, 3.0, 5.0, 1.0])
    expected = F.cross_entropy(logits, labels, weight=weights, label_smoothing=0.2)
    got = weighted_smoothed_ce(logits, F.one_hot(labels, 4).float(), weights, 0.2)
    torch.testing.assert_close(got, expected)
    # with unit weights and no smoothing it is the plain soft-target CE
    soft = torch.softmax(torch.randn(6, 4, generator=gen), 1)
    plain = -(soft * logits.log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(weighted_smoothed_ce(logits, soft, torch.ones(4), 0.0), plain)


def test_balanced_class_weights_follow_sqrt_median_ratio_clipped() -> None:
    # median of the present counts (100, 25, 4) is 25
    weights = balanced_class_weights(torch.tensor([100, 25, 4, 0]))
    assert weights.tolist() == pytest.approx([1.0, 1.0, 2.5, 5.0])


def test_upsample_pool_balances_classes_and_keeps_every_original_once() -> None:
    # given 6/3/1 samples of three classes
    labels = torch.tensor([0] * 6 + [1] * 3 + [2])
    gen = torch.Generator().manual_seed(0)
    # when topped up to the largest class
    pool = upsample_pool(labels, gen)
    # then every class has 6 entries and each original appears at least once
    assert torch.bincount(labels[pool]).tolist() == [6, 6, 6]
    assert torch.equal(pool[:10], torch.arange(10))
    assert torch.bincount(pool[labels[pool] == 1], minlength=10)[6:9].tolist() == [2, 2, 2]
    # and a ratio cap limits the growth of the rarest class
    capped = upsample_pool(labels, gen, max_ratio=2.0)
    assert torch.bincount(labels[capped]).tolist() == [6, 6, 2]


@pytest.mark.parametrize(("epoch", "length"), [("same", 10), ("pool", 18)])
def test_abaw_order_draws_a_balanced_epoch(epoch: str, length: int) -> None:
    labels = torch.tensor([0] * 6 + [1] * 3 + [2])
    targets = Targets(F.one_hot(labels, 3).float(), labels.clone(), labels, labels)
    card = ModelCard(name="t", labels=("a", "b", "c"), input_size=32, outputs=("logits",))
    method = AbawMethod({"epoch": epoch}, make_loss("ce"), card)
    order = method.order(targets, torch.Generator().manual_seed(1))
    assert len(order) == length
    if epoch == "pool":
        assert torch.bincount(labels[order]).tolist() == [6, 6, 6]


def test_first_occurrences_marks_only_the_first_of_each_index() -> None:
    index = torch.tensor([4, 2, 4, 7, 2, 4])
    assert first_occurrences(index).tolist() == [True, True, False, True, False, False]


@pytest.fixture()
def faces(ferplus_root: Path) -> torch.Tensor:
    """16 real FERPlus Valid faces, 32 px gray, on the [0, 1] scale."""
    probe = ModelCard(name="probe", labels=("x",), input_size=32, outputs=("logits",))
    x = load_split("ferplus", ferplus_root, "valid", probe, limit=64).x[:16]
    return (x * 0.5 + 0.5).clamp(0.0, 1.0)


def test_rand_augment_uses_the_twelve_face_safe_ops_and_stays_in_range(
    faces: torch.Tensor,
) -> None:
    assert len(RANDAUGMENT_OPS) == 12
    assert not {"solarize", "equalize"} & set(RANDAUGMENT_OPS)
    x = faces
    out = rand_augment(x, 2, 9, torch.Generator().manual_seed(0))
    again = rand_augment(x, 2, 9, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(out, again)
    assert (out - x).abs().flatten(1).amax(1).gt(1e-3).sum() >= 8  # most images changed
    with pytest.raises(ConfigError, match="magnitude"):
        rand_augment(x, 2, 31)


def test_only_repeated_samples_get_rand_augment(faces: torch.Tensor) -> None:
    # given an up-sampling method whose epoch has started, and a batch with index 3 twice
    card = ModelCard(name="t", labels=("a", "b"), input_size=32, outputs=("logits",))
    method = AbawMethod({"epoch": "pool"}, make_loss("ce"), card)
    labels = torch.tensor([0, 0, 0, 1, 0, 0])
    method.order(Targets(F.one_hot(labels, 2).float(), labels, labels, labels),
                 torch.Generator())  # fmt: skip
    x = faces[:3] * 2 - 1
    index = torch.tensor([3, 0, 3])
    batch = Batch(x, x, torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), index, 0.0, 0)
    # when the repeats are augmented
    out = method._augment_repeats(batch)
    # then the first occurrences are untouched and the repeat differs
    assert torch.equal(out[:2], x[:2])
    assert not torch.equal(out[2], x[2])
    # and index 0, already seen, is a repeat in the next batch
    nxt = Batch(x[:1], x[:1], torch.zeros(1, 2), torch.zeros(1, dtype=torch.long),
                torch.tensor([0]), 0.0, 0)  # fmt: skip
    assert method.stats["augmented_repeats"] == 1
    method._augment_repeats(nxt)
    assert method.stats["augmented_repeats"] == 2


def test_dft_feature_is_trainable_minus_frozen_plus_eps_and_frozen_gets_no_gradient(
    faces: torch.Tensor,
) -> None:
    # given a DFT wrapper around a tiny pretrained-like backbone
    torch.manual_seed(0)
    base = create_model("mobilenetv2", 8, 1, 32, width_mult=0.25)
    net = DeviationNet(base, 8, eps=1e-6).train()
    x = faces[:4] * 2 - 1
    # when run in training mode at the start: both copies are equal, the feature is eps
    _, feature = net(x)
    torch.testing.assert_close(feature, torch.full_like(feature, 1e-6), atol=1e-7, rtol=0)
    assert not net.body.training and not net.frozen.training
    # and after the trainable copy moves, the feature is the difference (+eps only in training)
    with torch.no_grad():
        next(net.body.parameters()).mul_(1.5)
    logits, feature = net(x)
    diff = net.body(x).mean((2, 3)) - net.frozen(x).mean((2, 3))
    torch.testing.assert_close(feature, diff + 1e-6)
    logits.sum().backward()
    assert all(p.grad is None for p in net.frozen.parameters())
    assert next(net.body.parameters()).grad is not None
    net.eval()
    torch.testing.assert_close(net(x)[1], diff.detach())


def test_abaw_run_with_upsampling_and_dft_end_to_end(
    tmp_path: Path, tiny_checkpoint: Path, ferplus_root: Path
) -> None:
    cfg = MethodConfig(
        "abaw", method="abaw", init=str(tiny_checkpoint), input_size=32, epochs=1,
        batch_size=32, max_train=96, max_eval=64, out_dir=str(tmp_path),
        data_root=str(ferplus_root), options={"dft": "true", "alpha": "0.2"},
    )  # fmt: skip
    result = run_method(cfg)
    summary = result["method_summary"]
    assert set(result["test"]) == {"H"}
    assert summary["pool"] > 96 and summary["augmented_repeats"] > 0
    assert max(summary["class_weights"]) == 5.0 and min(summary["class_weights"]) == 1.0
    with pytest.raises(ConfigError, match="weights need 8"):
        AbawMethod(
            {"weights": "1,3"},
            make_loss("ce"),
            ModelCard.from_json(read_checkpoint(tmp_path / "abaw" / "best_method.pt")["card"]),
        )
