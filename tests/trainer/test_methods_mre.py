"""MRE mixing (partner label differs, mask ratio, label kept), mid stage, modes, smoke run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fer_live.trainer.methods.mre import (
    MreConfig,
    MreNet,
    mid_split_index,
    mix_features,
    mre_loss,
    sample_partners,
)
from fer_live.trainer.methods.runner import MethodConfig, smoke_losses
from fer_live.trainer.models.registry import create_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_partners_have_a_different_label() -> None:
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2, 3])
    for _ in range(50):
        partners = sample_partners(labels, gen)
        assert bool((labels[partners] != labels).all())


def test_partner_is_self_when_the_whole_batch_shares_a_label() -> None:
    labels = torch.tensor([4, 4, 4])
    assert sample_partners(labels).tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("mode", "shape"),
    [("channel", (6, 4000)), ("spatial", (6, 3, 60, 60)), ("element", (6, 3, 40, 40))],
)
@pytest.mark.parametrize("ratio", [0.3, 0.5])
def test_mix_replaces_the_masked_fraction_with_the_partner(
    mode: str, shape: tuple, ratio: float
) -> None:
    gen = torch.Generator().manual_seed(1)
    feats = torch.arange(6, dtype=torch.float32).view(6, *([1] * (len(shape) - 1))).expand(shape)
    partners = torch.tensor([1, 0, 3, 2, 5, 4])
    mixed, mask = mix_features(feats.contiguous(), partners, mode, ratio, gen=gen)
    # the mask is shared by the batch and swaps about `ratio` of the entries
    assert mask.shape[0] == 1
    assert abs(float(mask.float().mean()) - ratio) < 0.03
    swapped = mixed != feats
    assert torch.equal(swapped, mask.expand(shape))
    assert torch.equal(mixed[swapped], feats[partners][swapped])
    if mode == "spatial":  # one mask over positions, shared by all channels
        assert torch.equal(mask[:, 0], mask[:, 0].expand_as(mask[:, 0]))
        assert mask.shape[1] == 1


def test_mid_stage_is_before_the_last_downsampling_block() -> None:
    resnet = create_model("resnet18", 8, 1, 64)
    assert mid_split_index(resnet.body, 1) == len(resnet.body) - 1  # layer3 output
    mnv2 = create_model("mobilenetv2", 8, 1, 64, width_mult=0.25)
    assert mid_split_index(mnv2.body, 1) == 14  # features[:14]: stride 16, before the last


def test_mre_forward_modes_and_label_kept() -> None:
    torch.manual_seed(0)
    base = create_model("mobilenetv2", 4, 1, 32, width_mult=0.25).eval()
    net = MreNet(base, 4, MreConfig(swaps=3), in_chans=1)
    x, labels = torch.randn(6, 1, 32, 32), torch.tensor([0, 1, 2, 3, 0, 1])
    net.eval()
    high, _ = net(x)
    torch.testing.assert_close(high, base(x)[0])  # H = the plain model
    mid, _ = net(x, mode="M")
    torch.testing.assert_close(net(x, mode="H+M")[0], high + mid)
    net.train()
    high, mids, _ = net(x, labels)
    assert len(mids) == 3 and all(m.shape == (6, 4) for m in mids)
    ce = torch.nn.functional.cross_entropy
    loss = mre_loss(high, mids, labels, 0.5, torch.nn.CrossEntropyLoss())
    # the mid heads are scored against each sample's own label, not the partner's
    expected = ce(high, labels) + 0.5 * torch.stack([ce(m, labels) for m in mids]).mean()
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize(
    ("method", "loss"), [("mre", "ce"), ("gus", "paper"), ("baseline", "recommended")]
)
def test_smoke_run_on_ferplus_lowers_the_loss(
    tiny_checkpoint: Path, ferplus_root: Path, method: str, loss: str
) -> None:
    # given a tiny model and 48 real FERPlus training images
    cfg = MethodConfig(
        "smoke", method=method, init=str(tiny_checkpoint), input_size=32, loss=loss, lr=3e-3,
        max_train=48, data_root=str(ferplus_root),
    )  # fmt: skip
    # when trained for a few steps on that batch
    losses = smoke_losses(cfg, steps=6)
    # then the loss falls
    assert losses[-1] < losses[0], json.dumps(losses)


@pytest.mark.parametrize(("mode", "pool"), [("spatial", "gap"), ("element", "gmp")])
def test_mre_modes_train_forward(mode: str, pool: str) -> None:
    base = create_model("mobilenetv2", 4, 1, 32, width_mult=0.25)
    net = MreNet(base, 4, MreConfig(mode=mode, pool=pool, swaps=2), in_chans=1).train()
    high, mids, _ = net(torch.randn(4, 1, 32, 32), torch.tensor([0, 1, 2, 3]))
    assert high.shape == (4, 4) and len(mids) == 2 and mids[0].shape == (4, 4)
    mre_loss(high, mids, torch.tensor([0, 1, 2, 3]), 1.0, torch.nn.CrossEntropyLoss()).backward()
    assert net.mid_conv.weight.grad is not None
