"""ULC-AG: Uncertain Label Correction via Auxiliary AU Graphs (METHODS.md §7, ``recommended``).

Target branch: a confidence ``alpha = sigmoid(W_a f)`` per sample and batch class weights
``gamma_j = 1 - N_j / N`` scale the logits of a weighted CE; SCN's rank regularization keeps the
top ``phi`` of alpha at least ``theta`` above the rest. Auxiliary branch: per-AU node features from
the backbone's last map (a per-AU 1x1 conv + BN + ReLU, then GAP: ME-GraphAU's AFG), two GCN layers
with LeakyReLU(0.2) over a fixed data-driven adjacency ``row_norm(P(AU_p | AU_q))``, a per-AU
linear classifier and an alpha-weighted BCE against AU pseudo-labels (MediaPipe blendshapes,
``fer_live.trainer.methods.au_labels``). Per-class templates of the pre-sigmoid AU logits (an EMA
over batches of the high-confidence samples) relabel low-confidence samples whose label's template
is farther than another class's: ``SP_org - SP_j* > margin`` with ``SP = 1 - cos``.

Schedule: ``L = (l1 / 2)(L_wce + L_rr) + l2 L_au`` with the seed's ramps around beta; before beta
the AU branch reads detached features and nothing is relabeled. beta is a fraction of the run
(``ramp``; the spec's 10 of 30 epochs). Deviations for CPU scale: MobileNetV2 64 px gray under the
runner's AdamW protocol (the spec: ResNet-18 224 px, SGD, batch 512), node width 64 (spec 512).
The spec's semantic vector (pre-sigmoid AU logits) shares a large offset across samples (absent
AUs have strongly negative logits): in a 2-epoch, 2,000-image run all 8 templates had pairwise
cosine 1.00, so the relabeling rule followed float noise. ``sem_center`` (default on; off = the
literal spec) subtracts the batch mean from semantic vectors and measures distances from the mean
template. It cannot help while the AU head is untrained: in that run its outputs were nearly
rank one (singular values 81, 8, 1.1), so relabels then mostly break labels; ``relabel_stats`` in
the result shows it. ``relabel_agree`` (off by default: not in the paper) moves a label only
to a class that the target branch's own prediction confirms; measured at 12,000 images, 4
epochs, the literal rule broke 3,190 clean labels and repaired none.
Inference uses the plain logits ``W f`` (mode ``H``); alpha, gamma and the AU branch are dropped.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fer_live.errors import ConfigError
from fer_live.infer.card import ModelCard
from fer_live.trainer.methods.au_labels import (
    AU_LIST,
    au_targets,
    default_cache_path,
    load_au_cache,
)
from fer_live.trainer.methods.graph_ops import row_norm
from fer_live.trainer.methods.protocol import Batch, Method, Targets
from fer_live.trainer.models.base import FerNet

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UlcOptions:
    """ULC-AG settings (spec §7); ``au_cache`` empty means the standard cache location."""

    au_cache: str = ""
    au_soft: bool = False
    prior_mix: float = 0.0
    node_dim: int = 64
    gcn_dim: int = 64
    phi: float = 0.8
    theta: float = 0.15
    ramp: float = 1 / 3
    detach_alpha_au: bool = True
    template_momentum: float = 0.9
    relabel: bool = True
    relabel_margin: float = 0.0
    relabel_agree: bool = False
    sem: str = "logits"
    sem_center: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.phi < 1 or not 0 < self.ramp <= 1 or self.sem not in ("logits", "flat"):
            raise ConfigError(f"ULC needs 0 < phi < 1, 0 < ramp <= 1, sem logits|flat: {self}")


def class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """gamma (C,): ``1 - N_j / N`` from the batch's label counts."""
    counts = torch.bincount(labels, minlength=num_classes).to(torch.float32)
    return 1.0 - counts / max(len(labels), 1)


def high_confidence(alpha: torch.Tensor, phi: float) -> torch.Tensor:
    """Boolean mask (B,) of the top ``floor(phi B)`` samples by alpha."""
    mask = torch.zeros_like(alpha, dtype=torch.bool)
    mask[torch.argsort(alpha, descending=True)[: math.floor(phi * len(alpha))]] = True
    return mask


def rank_loss(alpha: torch.Tensor, phi: float, theta: float) -> torch.Tensor:
    """SCN rank regularization ``max(0, theta - (mean_H alpha - mean_L alpha))``."""
    high = high_confidence(alpha.detach(), phi)
    if high.all() or not high.any():
        return alpha.sum() * 0
    return F.relu(theta - (alpha[high].mean() - alpha[~high].mean()))


def au_loss(au_logits: torch.Tensor, z: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``-mean_i sum_m alpha_i [z log p + (1 - z) log(1 - p)]`` on logits (B, M)."""
    bce = F.binary_cross_entropy_with_logits(au_logits, z, reduction="none").sum(dim=1)
    return (alpha * bce).mean()


def ramps(progress: float, beta: float) -> tuple[float, float]:
    """(lambda1, lambda2) of the seed at run fraction ``progress`` with the switch at ``beta``."""
    if progress <= beta:
        return math.exp(-((1 - progress / beta) ** 2)), 1.0
    return 1.0, math.exp(-((1 - beta / progress) ** 2))


def conditional_adjacency(z: torch.Tensor) -> torch.Tensor:
    """``A_pq = P(AU_p | AU_q) = OCC(p and q) / OCC(q)`` from binary labels (N, M).

    A column with ``OCC(q) = 0`` is zero except ``A_qq = 1``; the diagonal is 1.
    """
    z = z.to(torch.float64)
    both = z.T @ z
    occ = z.sum(dim=0)
    adj = torch.where(occ[None, :] > 0, both / occ.clamp(min=1)[None, :], torch.zeros_like(both))
    adj.fill_diagonal_(1.0)
    return adj.to(torch.float32)


class TemplateBank:
    """Per-class semantic templates, an EMA over batches with "seen" flags (spec §7.3)."""

    def __init__(self, num_classes: int, dim: int, momentum: float = 0.9) -> None:
        self.templates = torch.zeros(num_classes, dim)
        self.seen = torch.zeros(num_classes, dtype=torch.bool)
        self.momentum = momentum

    def update(self, s: torch.Tensor, alpha: torch.Tensor, labels: torch.Tensor) -> None:
        """Fold in ``T_j = mean over samples of class j of alpha_k s_k`` (pass the high set)."""
        s, alpha, labels = s.detach().cpu(), alpha.detach().cpu(), labels.cpu()
        for j in labels.unique().tolist():
            batch_t = (alpha[labels == j, None] * s[labels == j]).mean(dim=0)
            if self.seen[j]:
                batch_t = self.momentum * self.templates[j] + (1 - self.momentum) * batch_t
            self.templates[j] = batch_t
            self.seen[j] = True

    def relabel(
        self, s: torch.Tensor, labels: torch.Tensor, margin: float = 0.0, center: bool = False
    ) -> torch.Tensor:
        """New labels (L,) for samples ``s`` (L, M): j* where ``SP_org - SP_j* > margin``.

        ``center`` measures templates and samples from the mean of the seen templates, so a
        direction shared by every class does not decide the distances.
        """
        s, labels, templates = s.detach().cpu(), labels.cpu(), self.templates
        if center and self.seen.any():
            mean = templates[self.seen].mean(dim=0)
            s, templates = s - mean, templates - mean
        sp = 1.0 - F.normalize(s, dim=1) @ F.normalize(templates, dim=1).T
        sp = sp.masked_fill(~self.seen[None, :], float("inf"))
        org = sp.gather(1, labels[:, None]).squeeze(1)
        best = sp.scatter(1, labels[:, None], float("inf")).argmin(dim=1)
        gain = org - sp.gather(1, best[:, None]).squeeze(1)
        move = self.seen[labels] & torch.isfinite(gain) & (gain > margin)
        return torch.where(move, best, labels)


def confirmed(new: torch.Tensor, old: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
    """Keep a relabel only where the target branch predicts the new class too (not in the paper)."""
    return torch.where(new == predicted, new, old)


class UlcOutputs(NamedTuple):
    """One training forward: logits (B, C), embedding (B, D), alpha (B,), AU logits and nodes."""

    logits: torch.Tensor
    features: torch.Tensor
    alpha: torch.Tensor
    au_logits: torch.Tensor
    nodes: torch.Tensor


class UlcNet(nn.Module):
    """A FerNet with the confidence head and the AU-graph branch; eval gives the plain logits."""

    def __init__(self, backbone: FerNet, num_aus: int, node_dim: int = 64, gcn_dim: int = 64):
        super().__init__()
        d = backbone.num_features
        self.backbone = backbone
        self.alpha_fc = nn.Linear(d, 1)
        self.num_aus, self.node_dim = num_aus, node_dim
        self.au_nodes = nn.Sequential(
            nn.Conv2d(d, num_aus * node_dim, 1, bias=False),
            nn.BatchNorm2d(num_aus * node_dim),
            nn.ReLU(),
        )
        self.gcn1 = nn.Linear(node_dim, gcn_dim, bias=False)
        self.gcn2 = nn.Linear(gcn_dim, gcn_dim, bias=False)
        self.au_weight = nn.Parameter(torch.randn(num_aus, gcn_dim) / math.sqrt(gcn_dim))
        self.au_bias = nn.Parameter(torch.zeros(num_aus))
        self.register_buffer("au_adj", torch.eye(num_aus))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.backbone(x)

    def branches(self, x: torch.Tensor, detach_au: bool) -> UlcOutputs:
        """Both branches; the AU branch reads a detached map when ``detach_au``."""
        maps = self.backbone.body(x)
        f = maps.mean(dim=(2, 3))
        logits = self.backbone.forward_head(f)
        alpha = torch.sigmoid(self.alpha_fc(f)).squeeze(1)
        nodes = self.au_nodes(maps.detach() if detach_au else maps).mean(dim=(2, 3))
        h = nodes.view(len(x), self.num_aus, self.node_dim)
        h = F.leaky_relu(self.au_adj @ self.gcn1(h), 0.2)
        h = F.leaky_relu(self.au_adj @ self.gcn2(h), 0.2)
        au_logits = (h * self.au_weight).sum(dim=2) + self.au_bias
        return UlcOutputs(logits, f, alpha, au_logits, h)


class UlcMethod(Method):
    """ULC-AG on the runner (spec §7); relabels write to the runner's ``Targets``."""

    name: ClassVar[str] = "ulc"
    eval_modes: ClassVar[tuple[str, ...]] = ("H",)
    options_type: ClassVar[type] = UlcOptions

    def __init__(self, options: dict[str, Any], criterion: nn.Module, card: ModelCard) -> None:
        super().__init__(options, criterion, card)
        given = self.options.au_cache
        self.cache_path = Path(given) if given else default_cache_path("train")
        self.cache = load_au_cache(self.cache_path)  # fails early, naming the build command
        self.au_z: torch.Tensor | None = None
        dim = len(AU_LIST) if self.options.sem == "logits" else len(AU_LIST) * self.options.gcn_dim
        self.bank = TemplateBank(card.num_classes, dim, self.options.template_momentum)
        self.relabels = 0
        self.pending: tuple[Targets, torch.Tensor, torch.Tensor] | None = None

    def wrap(self, base: FerNet) -> nn.Module:
        return UlcNet(base, len(AU_LIST), self.options.node_dim, self.options.gcn_dim)

    def new_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        keep = ("alpha_fc", "au_nodes", "gcn1", "gcn2", "au_weight", "au_bias", "backbone.fc")
        return [p for n, p in model.named_parameters() if n.startswith(keep)]

    def prepare_aus(self, model: UlcNet, targets: Targets) -> None:
        """AU targets of the training split and the AU adjacency (once, on the first batch).

        Raises:
            ConfigError: The cache is shorter than the split or not in its reader order.
        """
        n = len(targets.labels)
        clean = targets.clean.cpu().numpy()
        if len(self.cache.labels) < n or not np.array_equal(self.cache.labels[:n], clean):
            raise ConfigError(
                f"AU cache {self.cache_path} ({len(self.cache.labels)} images) does not match the "
                f"first {n} FERPlus train images in reader order; rebuild it with "
                "`fer-train methods au-labels --split train`"
            )
        z = au_targets(self.cache, targets.given.cpu().numpy(), self.card.labels,
                       self.options.au_soft, self.options.prior_mix)  # fmt: skip
        self.au_z = torch.from_numpy(z).to(targets.labels.device)
        adj = row_norm(conditional_adjacency(torch.from_numpy(z) >= 0.5))
        model.au_adj.copy_(adj.to(model.au_adj.device))
        logger.info("ULC AU targets: %d images, face mesh in %.1f %%", n,
                    100 * float(self.cache.found[:n].mean()))  # fmt: skip

    def loss(self, model: nn.Module, batch: Batch, targets: Targets) -> torch.Tensor:
        if self.au_z is None:
            self.prepare_aus(model, targets)
        opts = self.options
        late = batch.progress >= opts.ramp
        out = model.branches(batch.x, detach_au=not late)
        gamma = class_weights(batch.labels, self.card.num_classes).to(out.logits)
        scale = (out.alpha * gamma[batch.labels])[:, None]
        l_wce = self.criterion(scale * out.logits, batch.soft)
        l_rr = rank_loss(out.alpha, opts.phi, opts.theta)
        weight = out.alpha.detach() if opts.detach_alpha_au else out.alpha
        l_au = au_loss(out.au_logits, self.au_z[batch.index].to(out.au_logits), weight)
        self._correct(out, batch, targets, relabel=late and opts.relabel)
        lam1, lam2 = ramps(batch.progress, opts.ramp)
        return lam1 / 2 * (l_wce + l_rr) + lam2 * l_au

    def _correct(self, out: UlcOutputs, batch: Batch, targets: Targets, relabel: bool) -> None:
        """Update the templates from the high set; relabel the low set (after beta)."""
        opts = self.options
        s = (out.au_logits if opts.sem == "logits" else out.nodes.flatten(1)).detach()
        if opts.sem_center:
            s = s - s.mean(dim=0)
        high = high_confidence(out.alpha.detach(), opts.phi)
        self.bank.update(s[high], out.alpha[high], batch.labels[high])
        if not relabel or high.all():
            return
        low = ~high
        old = batch.labels[low].cpu()
        new = self.bank.relabel(s[low], old, opts.relabel_margin, opts.sem_center)
        if opts.relabel_agree:
            new = confirmed(new, old, out.logits.detach()[low].argmax(dim=1).cpu())
        moved = new != old
        if moved.any():
            index = batch.index[low][moved.to(batch.index.device)]
            self.pending = (targets, index, new[moved].to(targets.labels.device))

    def after_step(self, model: nn.Module) -> None:
        """Write the last batch's relabels (after backward: the batch's targets stay intact)."""
        if self.pending is None:
            return
        targets, index, new = self.pending
        targets.relabel(index, new)
        self.relabels += len(index)
        self.pending = None
        logger.debug("ULC relabeled %d samples: %s", len(index), index.tolist())

    def summary(self) -> dict[str, Any]:
        n = len(self.au_z) if self.au_z is not None else 0
        found = self.cache.found[:n]
        return {
            "au_cache": str(self.cache_path),
            "au_mesh_coverage": round(float(found.mean()), 4) if n else 0.0,
            "au_emfacs_fallback": int((~found).sum()),
            "relabel_events": self.relabels,
        }
