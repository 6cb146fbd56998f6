"""EAN: straight-through graph, trainable Adj_loss, Kipf head, perturbation views, runs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from fer_live.errors import ConfigError
from fer_live.trainer.methods.ean import (
    EanHead,
    EanOptions,
    adjacency_loss,
    associative_graph,
    batch_tau,
)
from fer_live.trainer.methods.ean_views import (
    ILLUMINATION,
    OCCLUSION,
    POSE,
    occlude,
    perturb,
    relight,
    warp_pose,
)
from fer_live.trainer.methods.graph_ops import kipf_norm
from fer_live.trainer.methods.runner import MethodConfig, run_method, smoke_losses


def _unit(angles_deg: list[float]) -> torch.Tensor:
    a = torch.tensor(angles_deg) * math.pi / 180
    return torch.stack([torch.cos(a), torch.sin(a)], 1)


def test_graph_is_hard_in_value_with_the_soft_gradient() -> None:
    # given embeddings at 0, 30 and 90 degrees: cosines 0.866 (0-1), 0 (0-2), 0.5 (1-2)
    f = _unit([0.0, 30.0, 90.0]).requires_grad_(True)
    # when the graph is built at tau 0.75
    adj, soft, sim = associative_graph(f, 0.75, 0.05)
    # then its values are the hard threshold, diagonal included
    assert adj.detach().tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert soft[0, 1].item() == pytest.approx(1 / (1 + math.exp(-(math.sqrt(3) / 2 - 0.75) / 0.05)))
    # and a loss on the hard graph reaches the features (straight-through), unlike a hard step
    adj[0, 1].backward()
    assert f.grad.abs().sum() > 0
    assert not (sim >= 0.75).float().requires_grad


def test_adj_loss_gradient_by_hand() -> None:
    # given labels [0, 0, 1] and a soft adjacency
    soft = torch.tensor([[0.9, 0.2, 0.6], [0.2, 0.9, 0.4], [0.6, 0.4, 0.9]], requires_grad=True)
    labels = torch.tensor([0, 0, 1])
    # when the normalized loss is taken
    loss = adjacency_loss(soft, labels, 0.1, 0.05, "normalized")
    loss.backward()
    # then: same-label off-diagonal pairs (0,1),(1,0): 2 pairs linked 0.4 -> (1 - 0.2)^2 * 0.1;
    # different-label pairs: 4 of the 6 off-diagonal cells, mean (0.6+0.4+0.6+0.4)/6
    assert loss.item() == pytest.approx(0.1 * 0.8**2 + 0.05 * 2.0 / 6)
    same_grad = 0.1 * 2 * 0.8 * (-1 / 2)
    assert soft.grad[0, 1].item() == pytest.approx(same_grad)  # pulls same labels together
    assert soft.grad[0, 2].item() == pytest.approx(0.05 / 6)  # pushes different labels apart
    assert soft.grad[0, 0].item() == 0.0  # the diagonal is not part of the loss


def test_adj_loss_count_form_is_the_paper_square() -> None:
    soft = torch.tensor([[1.0, 0.25], [0.25, 1.0]], requires_grad=True)
    loss = adjacency_loss(soft, torch.tensor([1, 1]), 0.1, 0.0, "count")
    assert loss.item() == pytest.approx(0.1 * (0.5 - 2.0) ** 2)
    loss.backward()
    assert soft.grad[0, 1].item() == pytest.approx(0.1 * 2 * (0.5 - 2.0))


def test_kipf_head_by_hand_and_identity_graph_is_the_isolated_mlp() -> None:
    torch.manual_seed(0)
    head = EanHead(4, 3, hidden=5, dropout=0.0).eval()
    f = torch.randn(2, 4)
    # a fully connected 2-node graph: A~ = [[2,1],[1,2]], degrees 3, operator A~ / 3
    op = kipf_norm(torch.ones(2, 2))
    assert torch.allclose(op, torch.tensor([[2.0, 1.0], [1.0, 2.0]]) / 3)
    h = torch.relu(op @ head.lin1(f))
    assert torch.allclose(head(f, op), op @ head.lin2(h), atol=1e-6)
    # A = I (the first epochs, and a single image's [[1]]) gives the operator I: the plain MLP
    assert torch.allclose(kipf_norm(torch.eye(2)), torch.eye(2))
    assert torch.allclose(kipf_norm(torch.ones(1, 1)), torch.ones(1, 1))
    assert torch.allclose(head(f, kipf_norm(torch.eye(2))), head(f), atol=1e-6)


def test_quantile_threshold_and_option_checks() -> None:
    sim = torch.tensor([[1.0, 0.1, 0.2], [0.1, 1.0, 0.3], [0.2, 0.3, 1.0]])
    assert batch_tau(sim, EanOptions()) == 0.75
    tau = batch_tau(sim, EanOptions(tau_mode="quantile", quantile=0.5))
    assert tau == pytest.approx(0.2)
    with pytest.raises(ConfigError, match="ifg"):
        EanOptions(ifg="gan")


def _halves(n: int = 4, size: int = 32) -> torch.Tensor:
    u = torch.zeros(n, 1, size, size)
    u[..., : size // 2] = 1.0  # bright left half
    return u


def test_views_occlusion_relight_and_pose() -> None:
    gen = torch.Generator().manual_seed(0)
    u = torch.linspace(0.2, 0.8, 64).view(64, 1, 1, 1).expand(64, 1, 48, 48).contiguous()
    # occlusion: the rectangles cover 10-35 % of each image (less where one leaves the image or
    # they overlap), so about a fifth on average
    covered = (occlude(u, gen) != u).float().mean(dim=(1, 2, 3))
    assert float(covered.max()) <= 0.36 and float(covered.min()) > 0.02
    assert 0.12 < float(covered.mean()) < 0.3
    # illumination stays in range and changes the image
    lit = relight(u, gen)
    assert float(lit.min()) >= 0.0 and float(lit.max()) <= 1.0 and not torch.equal(lit, u)
    # pose proxy: the flip moves the bright half to the right
    warped = warp_pose(_halves(), gen)
    assert float(warped[..., 24:].mean()) > 0.8 and float(warped[..., :8].mean()) < 0.2


def test_perturb_draws_one_domain_per_image_and_keeps_normalization() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(90, 1, 32, 32) * 2 - 1  # normalized with mean = std = 0.5
    half = torch.full((1, 1, 1, 1), 0.5)
    views, domain = perturb(x, half, half, gen)
    assert views.shape == x.shape and float(views.abs().max()) <= 1.0 + 1e-5
    assert set(domain.tolist()) == {OCCLUSION, ILLUMINATION, POSE}


def _cfg(tmp_path: Path, ckpt: Path, root: Path, **options: str) -> MethodConfig:
    return MethodConfig(
        "ean", method="ean", init=str(ckpt), input_size=32, epochs=1, batch_size=32,
        max_train=96, max_eval=64, out_dir=str(tmp_path), data_root=str(root), options=options,
    )  # fmt: skip


def test_ean_graph_training_loss_falls_and_runs_both_modes(
    tmp_path: Path, tiny_checkpoint: Path, ferplus_root: Path, one_torch_thread: None
) -> None:
    # given the graph on from the start with a per-batch quantile threshold (edges exist)
    cfg = _cfg(tmp_path, tiny_checkpoint, ferplus_root, graph_start="0", tau_mode="quantile")
    # when a fixed batch is trained, the loss falls
    losses = smoke_losses(cfg, steps=4)
    assert losses[-1] < losses[0]
    # and a run scores the isolated and the (transductive) batch mode
    result = run_method(cfg)
    assert set(result["test"]) == {"isolated", "batch_transductive"}
    assert 0.0 < result["method_summary"]["edge_density"] < 1.0


def test_ean_adversary_trains_itself_only(
    tmp_path: Path, tiny_checkpoint: Path, ferplus_root: Path, one_torch_thread: None
) -> None:
    from fer_live.trainer.methods.protocol import Batch
    from fer_live.trainer.methods.runner import _setup

    # given EAN with the perturbation-domain adversary
    loop, _, _ = _setup(_cfg(tmp_path, tiny_checkpoint, ferplus_root, ifg="pda"))
    method, model = loop.method, loop.model
    adversary_ids = {id(p) for p in method.adversary.parameters()}
    assert not adversary_ids & {id(p) for p in model.parameters()}
    before = [p.detach().clone() for p in method.adversary.parameters()]
    t = loop.targets
    index = torch.arange(32)
    batch = Batch(loop.x[:32], loop.x[:32], t.soft[:32], t.labels[:32], index, 0.5, 0)
    # when one loss is taken and back-propagated
    model.train()
    loss = method.loss(model, batch, t)
    grads = [p.grad.clone() for p in method.adversary.parameters()]
    loss.backward()
    # then D took its own step, the generator loss left D's gradients alone, and reached the body
    after = list(method.adversary.parameters())
    assert any(not torch.equal(b, p) for b, p in zip(before, after, strict=True))
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, after, strict=True))
    assert model.backbone.body[0][0].weight.grad.abs().sum() > 0
