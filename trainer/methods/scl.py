"""SCL + CUEM + ARM (METHODS.md §8): supervised contrast against a momentum-key queue.

Training graph: the query view (the runner's augmented batch) goes through the shared backbone;
its feature map feeds ARM (or GAP + FC with ``arm=false``) for L_FER, and its GAP embedding a
projection head ``g_q`` giving unit queries ``q``. A momentum copy of backbone + ``g_q`` embeds a
second augmented view into unit keys ``k`` (no gradient), which enter a FIFO queue of ``queue``
(key, label) pairs after the loss. L = L_FER + λ(e)·L_sup, L_sup per §8.2 (each positive against
the negatives only, τ = 0.1, contrast set = the batch's keys + the queue, mean over queries).
CUEM (§8.3) relabels a sample for this step when its mean cosine similarity to another class's
queued keys exceeds that to its own class by more than θ; nothing is persisted.

Inference drops the key encoder, queue, projection head and CUEM: backbone + ARM + FC.
Deviations from the paper (shared protocol, see runner.py): AdamW + cosine instead of Adam with
0.9/epoch decay, MobileNetV2 64 px gray instead of ResNet-18 224 px, and the runner's tensor
augmentation for both views (the key view is a second draw of ``fer_live.trainer.data.augment``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from fer_live.errors import ConfigError
from fer_live.infer.card import ModelCard
from fer_live.trainer.config import AugConfig
from fer_live.trainer.data.augment import augment
from fer_live.trainer.methods.arm import ARM_MODES, ArmOptions, build_arm_net
from fer_live.trainer.methods.protocol import Batch, Method, Targets
from fer_live.trainer.models.base import FerNet


def projection_head(dim_in: int, hidden: int = 512, dim_out: int = 128) -> nn.Sequential:
    """The 3-layer MLP g_q of §8.1: Linear-BN-ReLU, Linear-BN-ReLU, Linear."""
    return nn.Sequential(
        nn.Linear(dim_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, dim_out),
    )  # fmt: skip


class LabeledQueue:
    """A FIFO of ``size`` unit keys (size, dim) and their labels (size,)."""

    def __init__(self, size: int, dim: int, device: torch.device | str = "cpu") -> None:
        if size < 1:
            raise ConfigError(f"queue size must be >= 1, got {size}")
        self.keys = torch.zeros(size, dim, device=device)
        self.labels = torch.full((size,), -1, dtype=torch.long, device=device)
        self.ptr = 0
        self.count = 0

    @property
    def full(self) -> bool:
        return self.count == len(self.labels)

    def to(self, device: torch.device | str) -> LabeledQueue:
        self.keys, self.labels = self.keys.to(device), self.labels.to(device)
        return self

    def enqueue(self, keys: torch.Tensor, labels: torch.Tensor) -> None:
        """Add (B, dim) keys and (B,) labels, overwriting the oldest entries when full."""
        size = len(self.labels)
        keys, labels = keys.detach()[-size:], labels.detach()[-size:]
        slots = (self.ptr + torch.arange(len(labels), device=self.keys.device)) % size
        self.keys[slots] = keys.to(self.keys)
        self.labels[slots] = labels.to(self.labels)
        self.ptr = (self.ptr + len(labels)) % size
        self.count = min(size, self.count + len(labels))

    def contents(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The filled entries: keys (M, dim) and labels (M,)."""
        if self.full:
            return self.keys, self.labels
        filled = self.labels >= 0
        return self.keys[filled], self.labels[filled]


def supcon_loss(
    q: torch.Tensor, keys: torch.Tensor, q_labels: torch.Tensor, k_labels: torch.Tensor,
    tau: float = 0.1,
) -> torch.Tensor:  # fmt: skip
    """The §8.2 supervised contrastive loss, mean over queries with at least one positive.

    L_i = -1/|P(i)| Σ_p log[exp(s_ip) / (exp(s_ip) + Σ_a exp(s_ia))], s = q·k / τ, where P(i)
    are the keys labelled y_i and A(i) the keys of other labels (other positives are not in the
    denominator).

    Args:
        q: (B, d) unit queries. keys: (M, d) unit keys. q_labels: (B,). k_labels: (M,).
        tau: Temperature.
    """
    s = q @ keys.T / tau
    pos = q_labels[:, None] == k_labels[None, :]
    neg_lse = torch.logsumexp(s.masked_fill(pos, float("-inf")), dim=1, keepdim=True)
    terms = s - torch.logaddexp(s, neg_lse)
    n_pos = pos.sum(1)
    per_query = -(terms * pos).sum(1) / n_pos.clamp(min=1)
    valid = n_pos > 0
    return per_query[valid].mean() if bool(valid.any()) else s.sum() * 0.0


def cuem_scores(
    q: torch.Tensor, keys: torch.Tensor, k_labels: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """S_cos (B, C): mean cosine of each query to the queued keys of each class (-inf if absent)."""
    sim = q @ keys.T
    onehot = F.one_hot(k_labels, num_classes).to(sim)
    counts = onehot.sum(0)
    mean = (sim @ onehot) / counts.clamp(min=1)
    return mean.masked_fill(counts[None, :] == 0, float("-inf"))


def cuem_relabel(
    scores: torch.Tensor, labels: torch.Tensor, theta: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels after CUEM: y_i <- argmax_c S[i, c] where u_i = max S[i] - S[i, y_i] > θ.

    Returns:
        The new labels (B,) and the mask (B,) of relabeled samples.
    """
    best, arg = scores.max(dim=1)
    u = best - scores.gather(1, labels[:, None]).squeeze(1)
    changed = (u > theta) & (arg != labels)
    return torch.where(changed, arg, labels), changed


def scl_lambda(epoch: int, alpha: float = 30.0, beta: float = 1e-4) -> float:
    """λ(e) = 1 - e/α for 1 <= e <= α (1-based epoch e), else β (it jumps from 0 to β)."""
    return 1.0 - epoch / alpha if epoch <= alpha else beta


class SclNet(nn.Module):
    """The classifier (ARM net or a plain FerNet) plus the projection head g_q."""

    def __init__(self, net: nn.Module, proj: nn.Sequential) -> None:
        super().__init__()
        self.net = net
        self.proj = proj

    def forward(
        self, x: torch.Tensor, mode: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The classifier's (logits, embedding); ``mode`` goes to an ARM net (None: its default)."""
        return self.net(x) if mode is None else self.net(x, mode=mode)


class KeyEncoder(nn.Module):
    """Momentum copy of backbone + projection head: unit keys (B, d), never trained by SGD."""

    def __init__(self, model: SclNet) -> None:
        super().__init__()
        self.body = copy.deepcopy(model.net.body)
        self.proj = copy.deepcopy(model.proj)
        self.requires_grad_(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(self.body(x).mean(dim=(2, 3))), dim=1)

    @torch.no_grad()
    def follow(self, model: SclNet, momentum: float) -> None:
        """θ_k <- m·θ_k + (1 - m)·θ_q over the backbone and projection parameters."""
        pairs = [(self.body, model.net.body), (self.proj, model.proj)]
        for key_mod, query_mod in pairs:
            for k, q in zip(key_mod.parameters(), query_mod.parameters(), strict=True):
                k.mul_(momentum).add_(q.detach(), alpha=1.0 - momentum)


@dataclass(frozen=True)
class SclOptions:
    """§8 settings; defaults are the spec's (``scope``: recommended or paper, see §8.3)."""

    queue: int = 8192
    dim: int = 128
    hidden: int = 512
    tau: float = 0.1
    momentum: float = 0.999
    lam_alpha: float = 30.0
    lam_beta: float = 1e-4
    theta: float = 0.1
    cuem_start: int = 5
    scope: str = "recommended"
    scl: bool = True
    cuem: bool = True
    arm: bool = True
    upscale: int = 16
    kernel: int = 0
    stride: int = 0


class SclMethod(Method):
    """SCL + CUEM + ARM; ``scl``/``cuem``/``arm`` switch the parts off for the ablation rows."""

    name: ClassVar[str] = "scl"
    eval_modes: ClassVar[tuple[str, ...]] = ARM_MODES
    options_type: ClassVar[type] = SclOptions

    def __init__(self, options: dict[str, Any], criterion: nn.Module, card: ModelCard) -> None:
        super().__init__(options, criterion, card)
        if self.options.scope not in ("recommended", "paper"):
            raise ConfigError(f"scl scope must be recommended or paper, got {self.options.scope}")
        self.key: KeyEncoder | None = None
        self.queue = LabeledQueue(self.options.queue, self.options.dim)
        self.gen: torch.Generator | None = None
        self.aug = AugConfig()
        self.lam = scl_lambda(1, self.options.lam_alpha, self.options.lam_beta)
        self.stats = {"cuem_relabels": 0, "cuem_repaired": 0, "cuem_broken": 0, "cuem_seen": 0}

    def wrap(self, base: FerNet) -> nn.Module:
        opt, card = self.options, self.card
        if opt.arm:
            arm = ArmOptions(opt.upscale, opt.kernel, opt.stride)
            net: nn.Module = build_arm_net(base, card.num_classes, card.channels,
                                           card.input_size, arm)  # fmt: skip
        else:
            net = base
        model = SclNet(net, projection_head(base.num_features, opt.hidden, opt.dim))
        if opt.scl or opt.cuem:
            self.key = KeyEncoder(model)
        return model

    def new_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        head = model.net.head if self.options.arm else model.net.fc
        return [*head.parameters(), *model.proj.parameters()]

    def start_epoch(self, model: nn.Module, epoch: int, epochs: int) -> None:
        self.lam = scl_lambda(epoch + 1, self.options.lam_alpha, self.options.lam_beta)

    def after_step(self, model: nn.Module) -> None:
        if self.key is not None:
            self.key.follow(model, self.options.momentum)

    def predict(self, model: nn.Module, x: torch.Tensor, mode: str) -> tuple[torch.Tensor, ...]:
        return model(x, mode=mode) if self.options.arm else model(x)

    def loss(self, model: nn.Module, batch: Batch, targets: Targets) -> torch.Tensor:
        logits, emb = model(batch.x)
        if self.key is None:
            return self.criterion(logits, batch.soft)
        keys = self._keys(batch)
        q = F.normalize(model.proj(emb), dim=1)
        labels, soft = self._cuem(q.detach(), batch, targets)
        loss = self.criterion(logits, soft)
        contrast_labels = labels if self.options.scope == "recommended" else batch.labels
        if self.options.scl:
            queued, queued_labels = self.queue.contents()
            all_keys = torch.cat([keys, queued])
            all_labels = torch.cat([contrast_labels, queued_labels])
            loss = loss + self.lam * supcon_loss(q, all_keys, contrast_labels, all_labels,
                                                 self.options.tau)  # fmt: skip
        self.queue.enqueue(keys, contrast_labels)
        return loss

    def _keys(self, batch: Batch) -> torch.Tensor:
        device = batch.x.device
        if self.gen is None:
            self.gen = torch.Generator(device=device).manual_seed(1234)
            self.key.to(device)
            self.queue.to(device)
        self.key.train()
        view = augment(batch.raw, self.aug, self.gen).contiguous(memory_format=torch.channels_last)
        return self.key(view)

    def _cuem(
        self, q: torch.Tensor, batch: Batch, targets: Targets
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(labels, soft targets) of this step after CUEM (unchanged when it is not active)."""
        opt = self.options
        if not (opt.cuem and self.queue.full and batch.epoch + 1 >= opt.cuem_start):
            return batch.labels, batch.soft
        scores = cuem_scores(q, *self.queue.contents(), batch.soft.shape[1])
        labels, changed = cuem_relabel(scores, batch.labels, opt.theta)
        soft = torch.where(
            changed[:, None], F.one_hot(labels, batch.soft.shape[1]).to(batch.soft), batch.soft
        )
        clean = targets.clean[batch.index]
        self.stats["cuem_seen"] += len(labels)
        self.stats["cuem_relabels"] += int(changed.sum())
        self.stats["cuem_repaired"] += int((changed & (labels == clean)).sum())
        self.stats["cuem_broken"] += int((changed & (batch.labels == clean)).sum())
        return labels, soft

    def summary(self) -> dict[str, Any]:
        return {**self.stats, "lambda_last": self.lam, "queue_filled": self.queue.count}
