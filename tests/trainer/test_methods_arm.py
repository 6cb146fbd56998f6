"""ARM: paper geometry and shapes, running shared map, batch independence in isolated mode."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fer_live.errors import ConfigError
from fer_live.trainer.methods.arm import ArmHead, ArmOptions, arm_geometry, build_arm_net
from fer_live.trainer.methods.runner import MethodConfig, run_method
from fer_live.trainer.models.registry import create_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize(
    ("side", "expected"),
    [(112, (32, 8, 11)), (32, (9, 2, 12)), (16, (5, 1, 12)), (128, (37, 9, 11))],
)
def test_arm_geometry_keeps_the_papers_fractions(side: int, expected: tuple) -> None:
    assert arm_geometry(side) == expected


def test_arm_head_on_the_paper_resnet18_map() -> None:
    # given ResNet-18's 512x7x7 map: PixelShuffle(16) -> 2x112x112 -> conv 32/8 -> 2x11x11
    head = ArmHead(512, 7, 7)
    logits = head(torch.randn(4, 512, 7, 7))
    assert logits.shape == (4, 7)
    assert head.out_side == 11 and head.planes == 2
    assert head.conv.weight.numel() == 1024 and head.fc.in_features == 121
    with pytest.raises(ConfigError, match="divisible"):
        ArmHead(500, 7, 7)


def test_running_map_starts_at_the_first_batch_mean_then_moves_by_momentum() -> None:
    torch.manual_seed(0)
    head = ArmHead(256, 2, 3, upscale=16, momentum=0.1).train()
    a, b = torch.randn(4, 256, 2, 2), torch.randn(4, 256, 2, 2)
    head(a)
    first = head.g_run.clone()
    torch.testing.assert_close(first, head.amend(a).mean(dim=(0, 1)).detach())
    with torch.no_grad():
        g_b = head.amend(b).mean(dim=(0, 1))
    head(b)
    torch.testing.assert_close(head.g_run, 0.9 * first + 0.1 * g_b)
    assert int(head.g_updates) == 2


def test_isolated_mode_is_batch_independent_and_batch_mode_is_not() -> None:
    # given a trained-mode pass (fills BN and g_run), then inference
    torch.manual_seed(0)
    base = create_model("mobilenetv2", 8, 1, 32, width_mult=0.25)
    net = build_arm_net(base, 8, 1, 32, ArmOptions())
    x = torch.randn(6, 1, 32, 32)
    net.train()(x)
    net.eval()
    with torch.no_grad():
        whole = net(x)[0]
        single = torch.cat([net(x[i : i + 1])[0] for i in range(6)])
        batch = net(x, mode="batch")[0]
        alone = net(x[:1], mode="batch")[0]
    # then isolated logits do not depend on the batch, and equal x_mean + alpha * g_run
    torch.testing.assert_close(whole, single, atol=1e-5, rtol=1e-5)
    assert whole.shape == (6, 8)
    assert not torch.allclose(batch, whole, atol=1e-4)
    # and batch mode with one image is (1 + alpha) * x_mean, as the spec says
    with torch.no_grad():
        amended = net.head.amend(net.body(x[:1])).mean(1)
        expected = net.head.fc((1 + net.head.alpha) * amended.flatten(1))
    torch.testing.assert_close(alone, expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="unknown ARM mode"):
        net(x, mode="window")


def test_arm_run_end_to_end(tmp_path: Path, tiny_checkpoint: Path, ferplus_root: Path) -> None:
    cfg = MethodConfig(
        "arm", method="arm", init=str(tiny_checkpoint), input_size=32, epochs=1,
        batch_size=32, max_train=96, max_eval=64, out_dir=str(tmp_path),
        data_root=str(ferplus_root),
    )  # fmt: skip
    result = run_method(cfg)
    assert set(result["valid"]) == {"isolated", "batch_transductive"}
    assert result["primary_mode"] == "isolated"
