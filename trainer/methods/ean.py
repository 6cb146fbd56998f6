"""EAN: Expression Associative Network (METHODS.md §5, ``recommended`` profile).

A Kipf GCN head runs over a mini-batch graph of the backbone's embeddings: two layers
D -> ``hidden`` (ReLU, dropout 0.5) -> C, cross-entropy on every node. The graph connects samples
whose cosine similarity reaches tau (fixed, or the batch's 80th percentile of off-diagonal
similarities). For the first ``graph_start`` of the run the adjacency is the identity, so the
head is a per-node MLP (Kipf's operator of A = I is I); this is also exactly the ``isolated``
inference mode (a single image's graph is [[1]]).

The paper's label-mask loss ``alpha (sum A_mask * A - sum A_mask)^2`` has zero gradient through a
hard threshold; here it is computed on a soft adjacency ``A_s = sigmoid((C_s - tau) / kappa)``,
normalized by the number of same-label pairs (``adj_form=count`` keeps the paper's count form),
plus a penalty on different-label edges (``neg_weight``, 0 = paper); the GCN forward uses the hard
graph with a straight-through gradient ``A = A_hard + A_s - sg(A_s)``. The diagonal (always
connected) is left out of the loss sums. The invariant feature generator is replaced by a
label-free perturbation-domain adversary (``ifg=pda``, see ``fer_live.trainer.methods.ean_views``).

Deviations for CPU scale: MobileNetV2 64 px gray with AdamW + cosine (the runner's protocol)
instead of ResNet-18 224 px with SGD 0.1; the schedule points (graph from epoch 50 of 80, the
adversary ramp over 5 of 80) are expressed as fractions of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from fer_live.errors import ConfigError
from fer_live.infer.card import ModelCard
from fer_live.trainer.methods.ean_views import DomainAdversary, perturb, stride_stage_index
from fer_live.trainer.methods.graph_ops import cosine_matrix, kipf_norm
from fer_live.trainer.methods.protocol import Batch, Method, Targets
from fer_live.trainer.models.base import FerNet

EAN_MODES = ("isolated", "batch")
FORMS = ("normalized", "count")


@dataclass(frozen=True)
class EanOptions:
    """EAN settings (spec §5.2, §5.4); fractions are of the whole run."""

    tau: float = 0.75
    tau_mode: str = "fixed"
    quantile: float = 0.8
    kappa: float = 0.05
    adj_weight: float = 0.1
    neg_weight: float = 0.05
    adj_form: str = "normalized"
    hidden: int = 256
    dropout: float = 0.5
    graph_start: float = 0.625
    ifg: str = "off"
    adv_weight: float = 0.1
    adv_ramp: float = 0.0625
    adv_lr: float = 1e-4
    cons_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.tau_mode not in ("fixed", "quantile") or self.adj_form not in (
            "normalized",
            "count",
        ):
            raise ConfigError(
                f"EAN tau_mode must be fixed|quantile, adj_form normalized|count: {self}"
            )
        if self.ifg not in ("off", "pda") or not 0 <= self.graph_start <= 1 or self.kappa <= 0:
            raise ConfigError(f"EAN ifg must be off|pda, 0 <= graph_start <= 1, kappa > 0: {self}")


def batch_tau(sim: torch.Tensor, opts: EanOptions) -> float:
    """The threshold for a batch: fixed tau, or a quantile of the off-diagonal similarities."""
    if opts.tau_mode == "fixed" or sim.shape[0] < 2:
        return opts.tau
    off = ~torch.eye(sim.shape[0], dtype=torch.bool, device=sim.device)
    return float(torch.quantile(sim.detach()[off].float(), opts.quantile))


def associative_graph(
    f: torch.Tensor, tau: float, kappa: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cosine graph of embeddings ``f`` (B, D) with a straight-through gradient.

    Returns:
        ``(adj, soft, sim)``: ``adj`` equals the hard graph ``1[C_s >= tau]`` in value and has the
        gradient of ``soft = sigmoid((C_s - tau) / kappa)``; ``sim`` is C_s. All (B, B).
    """
    sim = cosine_matrix(f)
    soft = torch.sigmoid((sim - tau) / kappa)
    hard = (sim.detach() >= tau).to(f.dtype)
    return hard + (soft - soft.detach()), soft, sim


def adjacency_loss(
    soft: torch.Tensor, labels: torch.Tensor, weight: float, neg_weight: float, form: str
) -> torch.Tensor:
    """EAN's label-mask loss on the soft adjacency (diagonal excluded).

    ``normalized``: ``weight (1 - sum(M A_s) / sum M)^2 + neg_weight mean((1 - M) A_s)``;
    ``count`` (paper): ``weight (sum(M A_s) - sum M)^2 + neg_weight mean((1 - M) A_s)``,
    where ``M = 1[y_i = y_j]``.
    """
    off = 1.0 - torch.eye(len(labels), dtype=soft.dtype, device=soft.device)
    same = (labels[:, None] == labels[None, :]).to(soft.dtype) * off
    linked = (same * soft).sum()
    pairs = same.sum()
    if form == "count":
        pos = weight * (linked - pairs) ** 2
    else:
        pos = weight * (1.0 - linked / pairs.clamp(min=1.0)) ** 2 if pairs > 0 else soft.sum() * 0
    neg = neg_weight * ((off - same) * soft).sum() / off.sum().clamp(min=1.0)
    return pos + neg


class EanHead(nn.Module):
    """Two Kipf GCN layers ``Â ReLU(Â X W0) W1`` (dropout between); ``op=None`` means Â = I."""

    def __init__(self, in_dim: int, num_classes: int, hidden: int = 256, dropout: float = 0.5):
        super().__init__()
        self.lin1 = nn.Linear(in_dim, hidden)
        self.lin2 = nn.Linear(hidden, num_classes)
        self.drop = nn.Dropout(dropout)

    def forward(self, f: torch.Tensor, op: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, C) of embeddings (B, D) under the normalized operator ``op`` (B, B)."""
        h = self.lin1(f)
        h = self.drop(F.relu(h if op is None else op @ h))
        out = self.lin2(h)
        return out if op is None else op @ out


class EanNet(nn.Module):
    """A FerNet backbone with an EAN head; eval ``forward(x) -> (logits, embedding)`` per ``mode``.

    Args:
        backbone: The FerNet (its ``body`` must be Sequential when ``mid_index`` is set).
        head: The GCN head.
        opts: EAN options (threshold rule of the ``batch`` mode).
        mid_index: Block index whose output the adversary reads (None: no adversary).
    """

    def __init__(
        self, backbone: FerNet, head: EanHead, opts: EanOptions, mid_index: int | None = None
    ) -> None:
        super().__init__()
        self.backbone, self.head, self.opts = backbone, head, opts
        self.mid_index = mid_index

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(stride-8 map or None, embedding (B, D))."""
        if self.mid_index is None:
            return None, self.backbone.forward_features(x)
        body = self.backbone.body
        mid = body[: self.mid_index + 1](x)
        return mid, body[self.mid_index + 1 :](mid).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor, mode: str = "isolated") -> tuple[torch.Tensor, torch.Tensor]:
        if mode not in EAN_MODES:
            raise ConfigError(f"unknown EAN mode {mode!r}; valid: {', '.join(EAN_MODES)}")
        f = self.backbone.forward_features(x)
        if mode == "isolated":
            return self.head(f), f
        sim = cosine_matrix(f)
        adj = (sim >= batch_tau(sim, self.opts)).to(f.dtype)
        return self.head(f, kipf_norm(adj)), f


class EanMethod(Method):
    """EAN (spec §5): batch-graph GCN head, trainable Adj_loss, optional perturbation adversary.

    ``isolated`` is the deployable per-image mode; ``batch`` is transductive (labelled so).
    The adversary D and its Adam optimizer live in the method, outside the model, so the runner's
    optimizer never trains D on the generator's loss; D takes its own step inside ``loss``.
    """

    name: ClassVar[str] = "ean"
    eval_modes: ClassVar[tuple[str, ...]] = EAN_MODES
    options_type: ClassVar[type] = EanOptions

    def __init__(self, options: dict[str, Any], criterion: nn.Module, card: ModelCard) -> None:
        super().__init__(options, criterion, card)
        self.adversary: DomainAdversary | None = None
        self.adv_opt: torch.optim.Adam | None = None
        self.gen: torch.Generator | None = None
        self.stats = {"edge_density": 0.0, "adv_acc": 0.0}

    def wrap(self, base: FerNet) -> nn.Module:
        opts = self.options
        head = EanHead(base.num_features, self.card.num_classes, opts.hidden, opts.dropout)
        mid_index = None
        if opts.ifg == "pda":
            mid_index = stride_stage_index(base.body, self.card.channels, 8)
            with torch.no_grad():
                probe = torch.zeros(1, self.card.channels, 64, 64)
                channels = int(base.body[: mid_index + 1].eval()(probe).shape[1])
            base.train()
            self.adversary = DomainAdversary(channels)
            self.adv_opt = torch.optim.Adam(
                self.adversary.parameters(), lr=opts.adv_lr, betas=(0.5, 0.999)
            )
        return EanNet(base, head, opts, mid_index)

    def new_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        return list(model.head.parameters())

    def graph_loss(
        self, model: EanNet, f: torch.Tensor, batch: Batch, adj_term: bool = True
    ) -> torch.Tensor:
        """Node CE over the batch graph (identity before ``graph_start``) plus Adj_loss."""
        opts = self.options
        if batch.progress < opts.graph_start:
            return self.criterion(model.head(f), batch.soft)
        sim = cosine_matrix(f.detach())
        adj, soft, _ = associative_graph(f, batch_tau(sim, opts), opts.kappa)
        loss = self.criterion(model.head(f, kipf_norm(adj)), batch.soft)
        if adj_term:
            off = ~torch.eye(len(f), dtype=torch.bool, device=f.device)
            self.stats["edge_density"] = float(adj.detach()[off].mean()) if len(f) > 1 else 0.0
            loss = loss + adjacency_loss(
                soft, batch.labels, opts.adj_weight, opts.neg_weight, opts.adj_form
            )
        return loss

    def loss(self, model: nn.Module, batch: Batch, targets: Targets) -> torch.Tensor:
        if self.adversary is None:
            return self.graph_loss(model, model.features(batch.x)[1], batch)
        return self._pda_loss(model, batch)

    def _pda_loss(self, model: EanNet, batch: Batch) -> torch.Tensor:
        opts, n = self.options, len(batch.labels)
        if self.gen is None or self.gen.device != batch.x.device:
            self.gen = torch.Generator(device=batch.x.device).manual_seed(0)
        mean = torch.tensor(self.card.mean, device=batch.x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.card.std, device=batch.x.device).view(1, -1, 1, 1)
        views, domain = perturb(batch.x, mean, std, self.gen)
        mid, f = model.features(torch.cat([batch.x, views.to(batch.x.dtype)]))
        domains = torch.cat([torch.zeros_like(domain), domain])
        self._adversary_step(mid.detach(), domains)
        self.adversary.requires_grad_(False)
        fooled = F.cross_entropy(self.adversary(mid[n:]), torch.zeros_like(domain))
        self.adversary.requires_grad_(True)
        task = self.graph_loss(model, f[:n], batch) + self.graph_loss(model, f[n:], batch, False)
        cons = (1.0 - F.cosine_similarity(f[n:], f[:n].detach(), dim=1)).mean()
        ramp = min(1.0, batch.progress / opts.adv_ramp) if opts.adv_ramp > 0 else 1.0
        return task + opts.adv_weight * ramp * fooled + opts.cons_weight * cons

    def _adversary_step(self, h: torch.Tensor, domains: torch.Tensor) -> None:
        """One Adam step of D on detached maps of every view (L_D = CE(D(sg(h)), d))."""
        self.adversary.to(h.device).train()
        with torch.enable_grad():
            logits = self.adversary(h)
            loss = F.cross_entropy(logits, domains)
            self.adv_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.adv_opt.step()
        self.stats["adv_acc"] = float((logits.argmax(1) == domains).float().mean())

    def predict(self, model: nn.Module, x: torch.Tensor, mode: str) -> tuple[torch.Tensor, ...]:
        return model(x, mode=mode)

    def summary(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.stats.items()}
