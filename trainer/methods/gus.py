"""GUS: Graph-embedded Uncertainty Suppressing (METHODS.md §2).

``GusHead`` maps embeddings (B, D) to logits through two graph layers over a cosine-similarity
graph of the samples and a linear classifier: f -> GUS1 -> LeakyReLU(0.2) -> GUS2 -> FC. The graph
is built on detached features; training draws a threshold t ~ U(low, high) per layer per forward,
evaluation uses a fixed t. Three inference modes (spec §0.4):

* ``isolated``: every sample is its own graph (exactly a per-sample forward);
* ``window``: a graph per group id (e.g. one tracked face's recent frames);
* ``batch``: one graph over the whole batch (the official evaluation; results are transductive).

CPU-scale plan: the head is trained on frozen embeddings of the default model (see
``fer_live.trainer.methods.train_gus_head``) and exported with ``save_gus_head`` to the ``.gus.npz``
file that ``fer_live.smooth.gus_head`` runs in numpy. ``GusNet`` trains backbone and head end to
end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from fer_live.errors import ConfigError
from fer_live.smooth.gus_head import write_head_file
from fer_live.trainer.methods.graph_ops import (
    NORMS,
    group_mask,
    normalize_adjacency,
    threshold_adjacency,
)
from fer_live.trainer.methods.protocol import Method
from fer_live.trainer.models.base import FerNet

MODES = ("isolated", "window", "batch")


class GusLayer(nn.Module):
    """One graph layer ``H' = Â H W`` (no bias, weight ~ U(-1/sqrt(out), 1/sqrt(out)))."""

    def __init__(self, in_dim: int, out_dim: int, norm: str = "mlgcn", p: float = 0.5) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ConfigError(f"unknown graph norm {norm!r}; valid: {', '.join(NORMS)}")
        self.norm, self.p = norm, p
        self.weight = nn.Parameter(torch.empty(in_dim, out_dim))
        bound = 1.0 / math.sqrt(out_dim)
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, h: torch.Tensor, threshold: float, mask: torch.Tensor | None) -> torch.Tensor:
        adj = normalize_adjacency(threshold_adjacency(h, threshold, mask), self.norm, self.p)
        return adj @ (h @ self.weight)


class GusHead(nn.Module):
    """Two GUS layers and a classifier over a batch of embeddings.

    Args:
        in_dim: Embedding size D of the backbone.
        num_classes: Number of logits.
        hidden: Width of both graph layers (the paper: 512 for a 512-d ResNet-18 embedding).
        norm: ``mlgcn`` (paper, p = 0.5) or ``kipf``.
        p: ML-GCN reweighting factor.
        drop_rate: Dropout on the embedding in training (paper: 0.2).
        train_threshold: (low, high) of the random training threshold (paper: (0, 1)).
        eval_threshold: Threshold at evaluation (paper: 0.5).
    """

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        hidden: int = 512,
        norm: str = "mlgcn",
        p: float = 0.5,
        drop_rate: float = 0.2,
        train_threshold: tuple[float, float] = (0.0, 1.0),
        eval_threshold: float = 0.5,
    ) -> None:
        super().__init__()
        self.gus1 = GusLayer(in_dim, hidden, norm, p)
        self.gus2 = GusLayer(hidden, hidden, norm, p)
        self.fc = nn.Linear(hidden, num_classes)
        self.drop = nn.Dropout(drop_rate)
        self.train_threshold = train_threshold
        self.eval_threshold = eval_threshold

    def _threshold(self) -> float:
        if not self.training:
            return self.eval_threshold
        low, high = self.train_threshold
        return low + (high - low) * float(torch.rand(()))

    def forward(
        self, f: torch.Tensor, mode: str = "batch", groups: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits (B, C) for embeddings ``f`` (B, D).

        Args:
            f: Embeddings.
            mode: ``isolated``, ``window`` (needs ``groups``) or ``batch``.
            groups: Group id per row (B,) for ``window`` mode.
        """
        mask = mode_mask(f, mode, groups)
        h = self.gus1(self.drop(f), self._threshold(), mask)
        h = self.gus2(F.leaky_relu(h, 0.2), self._threshold(), mask)
        return self.fc(h)


def mode_mask(f: torch.Tensor, mode: str, groups: torch.Tensor | None) -> torch.Tensor | None:
    """The (B, B) mask that restricts the graph to an inference mode (None = whole batch).

    Raises:
        ConfigError: Unknown mode, or ``window`` without groups.
    """
    if mode == "batch":
        return None
    if mode == "isolated":
        return torch.eye(f.shape[0], device=f.device)
    if mode == "window":
        if groups is None:
            raise ConfigError("GUS window mode needs a group id per sample")
        return group_mask(groups.to(f.device))
    raise ConfigError(f"unknown GUS mode {mode!r}; valid: {', '.join(MODES)}")


class GusNet(nn.Module):
    """A FerNet backbone whose linear head is replaced by a ``GusHead`` (end-to-end GUS).

    ``forward(x) -> (logits, embedding)`` keeps the FerNet contract; the ``mode`` argument
    selects the inference mode (training always uses ``batch`` graphs, as the paper does).
    """

    def __init__(self, backbone: FerNet, head: GusHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(
        self, x: torch.Tensor, groups: torch.Tensor | None = None, mode: str = "isolated"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone.forward_features(x)
        return self.head(features, "batch" if self.training else mode, groups), features


@dataclass(frozen=True)
class GusOptions:
    """GUS head settings (spec §2); the defaults are the paper's."""

    hidden: int = 512
    norm: str = "mlgcn"
    p: float = 0.5
    eval_threshold: float = 0.5


class GusMethod(Method):
    """End-to-end GUS as a runner method: the linear head replaced by two GUS layers.

    ``isolated`` is the deployable per-image mode; ``batch`` is transductive (labelled so).
    """

    name: ClassVar[str] = "gus"
    eval_modes: ClassVar[tuple[str, ...]] = ("isolated", "batch")
    options_type: ClassVar[type] = GusOptions

    def wrap(self, base: FerNet) -> nn.Module:
        opt = self.options
        head = GusHead(
            base.num_features, self.card.num_classes, opt.hidden, opt.norm, opt.p,
            eval_threshold=opt.eval_threshold,
        )  # fmt: skip
        return GusNet(base, head)

    def new_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        return list(model.head.parameters())

    def predict(self, model: nn.Module, x: torch.Tensor, mode: str) -> tuple[torch.Tensor, ...]:
        return model(x, mode=mode)


def save_gus_head(head: GusHead, path: Path, meta: dict[str, Any]) -> Path:
    """Write the head as ``.npz`` for the numpy GUS-T smoother.

    Args:
        head: A trained head.
        path: Output file (``<model stem>.gus.npz``).
        meta: Provenance, e.g. ``base_name``, ``base_sha256``, ``labels``, metrics.

    Returns:
        The written path.
    """
    arrays = {
        "w1": head.gus1.weight, "w2": head.gus2.weight, "fc_w": head.fc.weight,
        "fc_b": head.fc.bias,
    }  # fmt: skip
    return write_head_file(
        path, {k: v.detach().cpu().numpy() for k, v in arrays.items()}, norm=head.gus1.norm,
        p=head.gus1.p, threshold=head.eval_threshold, **meta,
    )  # fmt: skip
