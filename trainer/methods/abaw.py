"""The ABAW4 recipe (METHODS.md §6): label smoothing, weighted CE, up-sampling, DFT.

* Loss (§6.1): PyTorch's weighted label-smoothed CE, ``CrossEntropyLoss(weight=w,
  label_smoothing=α)``, generalized to soft targets: Σ_i Σ_c w_c t_ic (-log p_ic) / Σ_i Σ_c w_c y_ic
  with t = (1 - α) y + α / K. The runner's ``--loss`` is not used by this method.
  Per-class weights: the paper's [1, 3, 5, 1, 1, 1] are for the 6 ABAW classes; for FERPlus
  (``weights`` empty) they default to clip(sqrt(median count / count), 1, 5), which gives the
  rare classes (disgust, contempt, fear) 2-5 and the common ones 1, as the paper's list does.
* Up-sampling (§6.2) as the epoch order: every class is topped up with repeated samples to the
  largest class (``max_ratio`` > 0 caps a class at ``max_ratio`` times its size), and each repeat
  gets RandAugment (2 of the 12 face-safe ops, magnitude 9; Solarize and Equalize excluded) on
  top of the runner's augmentation. The paper writes the copies to disk once; here they are
  drawn anew every epoch. ``epoch=same`` draws N of the pool so the runner's step schedule
  (sized for N per epoch) holds; ``epoch=pool`` uses the whole pool (the cosine schedule then
  reaches its floor early, since the runner sizes it for N samples per epoch).
* DFT (§6.3, ``dft=true``): a frozen and a trainable copy of the starting backbone, both in
  eval mode (frozen BN statistics, no dropout); the feature is trainable − frozen (+ ε in
  training) into a new linear classifier. Start it from a fer-train checkpoint (``--init``),
  the paper's stage-1 model.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from fer_live.errors import ConfigError
from fer_live.infer.card import ModelCard
from fer_live.trainer.methods.protocol import Batch, Method, Targets
from fer_live.trainer.models.base import FerNet


def smooth_targets(soft: torch.Tensor, alpha: float) -> torch.Tensor:
    """Label-smoothed targets (1 - α)·y + α/K of (B, K) targets."""
    return (1.0 - alpha) * soft + alpha / soft.shape[1]


def weighted_smoothed_ce(
    logits: torch.Tensor, soft: torch.Tensor, weights: torch.Tensor, alpha: float
) -> torch.Tensor:
    """PyTorch's weighted label-smoothed CE (mean reduction), for (B, K) soft or one-hot targets."""
    logp = F.log_softmax(logits.float(), dim=1)
    w = weights.to(logp)[None, :]
    num = -(smooth_targets(soft.to(logp), alpha) * w * logp).sum()
    return num / (soft.to(logp) * w).sum().clamp(min=1e-12)


def balanced_class_weights(counts: torch.Tensor, cap: float = 5.0) -> torch.Tensor:
    """clip(sqrt(median / count), 1, cap) per class (absent classes get ``cap``)."""
    counts = counts.float()
    median = counts[counts > 0].median() if bool((counts > 0).any()) else torch.tensor(1.0)
    ratio = torch.where(counts > 0, median / counts.clamp(min=1), torch.tensor(cap * cap))
    return ratio.sqrt().clamp(1.0, cap)


def upsample_pool(labels: torch.Tensor, gen: torch.Generator, max_ratio: float = 0.0):  # noqa: ANN201
    """Indices of all samples plus repeats topping every class up to the largest one.

    Args:
        labels: (N,) class per sample.
        gen: Generator on the labels' device.
        max_ratio: If > 0, a class grows to at most ``max_ratio`` times its size.

    Returns:
        (M,) indices: 0..N-1 once each, then the repeats (cycling each class in random order).
    """
    counts = torch.bincount(labels)
    largest = int(counts.max())
    parts = [torch.arange(len(labels), device=labels.device)]
    for cls, count in enumerate(counts.tolist()):
        target = largest if max_ratio <= 0 else min(largest, int(round(max_ratio * count)))
        if count == 0 or target <= count:
            continue
        members = torch.nonzero(labels == cls).squeeze(1)
        shuffled = members[torch.randperm(count, generator=gen, device=labels.device)]
        parts.append(shuffled.repeat((target - count) // count + 1)[: target - count])
    return torch.cat(parts)


def first_occurrences(index: torch.Tensor) -> torch.Tensor:
    """(B,) mask that is True at the first position of each distinct value of ``index``."""
    positions = torch.arange(len(index), device=index.device)
    uniq, inverse = torch.unique(index, return_inverse=True)
    first = torch.full((len(uniq),), len(index), device=index.device, dtype=positions.dtype)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")
    return positions == first[inverse]


# RandAugment (§6.2) on [0, 1] float batches: torchvision's 14 ops minus Solarize and Equalize,
# with torchvision's magnitude scale (31 bins). Geometric ops fill with black, as torchvision.
RANDAUGMENT_OPS = (
    "identity", "shear_x", "shear_y", "translate_x", "translate_y", "rotate",
    "brightness", "color", "contrast", "sharpness", "posterize", "autocontrast",
)  # fmt: skip
_BINS = 31


def _affine(x: torch.Tensor, op: str, signed: torch.Tensor, level: float) -> torch.Tensor:
    """Shear (factor 0.3·level), translate (0.45·level of the side) or rotate (30°·level)."""
    n = x.shape[0]
    theta = torch.eye(2, 3, device=x.device, dtype=x.dtype).repeat(n, 1, 1)
    if op == "shear_x":
        theta[:, 0, 1] = signed * 0.3 * level
    elif op == "shear_y":
        theta[:, 1, 0] = signed * 0.3 * level
    elif op == "translate_x":
        theta[:, 0, 2] = signed * 2.0 * (150.0 / 331.0) * level
    elif op == "translate_y":
        theta[:, 1, 2] = signed * 2.0 * (150.0 / 331.0) * level
    else:
        angle = signed * math.radians(30.0 * level)
        theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle), -torch.sin(angle)
        theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle), torch.cos(angle)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (other + factor.view(-1, 1, 1, 1) * (x - other)).clamp(0.0, 1.0)


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    rgb = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * rgb).sum(1, keepdim=True).expand_as(x)


def _smoothed(x: torch.Tensor) -> torch.Tensor:
    """torchvision's sharpness reference: 3x3 [1 1 1; 1 5 1; 1 1 1]/13 inside, border kept."""
    kernel = torch.ones(3, 3, device=x.device, dtype=x.dtype)
    kernel[1, 1] = 5.0
    c = x.shape[1]
    blurred = F.conv2d(x, (kernel / 13.0).expand(c, 1, 3, 3), groups=c)
    out = x.clone()
    out[..., 1:-1, 1:-1] = blurred
    return out


def _photometric(x: torch.Tensor, op: str, signed: torch.Tensor, level: float) -> torch.Tensor:
    """Brightness, color, contrast, sharpness (factor 1 ± 0.9·level), posterize, autocontrast."""
    factor = 1.0 + signed * 0.9 * level
    if op == "brightness":
        return _blend(x, torch.zeros_like(x), factor)
    if op == "color":
        return _blend(x, _gray(x), factor)
    if op == "contrast":
        return _blend(x, _gray(x).mean(dim=(1, 2, 3), keepdim=True).expand_as(x), factor)
    if op == "sharpness":
        return _blend(x, _smoothed(x), factor)
    if op == "posterize":
        bits = 8 - int(round(level * (_BINS - 1) / ((_BINS - 1) / 4)))
        step = 2 ** (8 - bits)
        return torch.floor(torch.round(x * 255.0) / step) * step / 255.0
    low = x.amin(dim=(2, 3), keepdim=True)
    high = x.amax(dim=(2, 3), keepdim=True)
    scale = torch.where(high > low, 1.0 / (high - low).clamp(min=1e-6), torch.ones_like(high))
    return torch.where(high > low, (x - low) * scale, x).clamp(0.0, 1.0)


def rand_augment(
    x: torch.Tensor, num_ops: int = 2, magnitude: int = 9, gen: torch.Generator | None = None
) -> torch.Tensor:
    """RandAugment on a [0, 1] float batch (B, C, S, S): ``num_ops`` random ops per image.

    Each image draws its own ops from ``RANDAUGMENT_OPS`` and a random sign for signed ops; the
    strength is ``magnitude`` of torchvision's 31 bins (9 = 30% of each op's maximum).
    """
    if not 0 <= magnitude < _BINS:
        raise ConfigError(f"RandAugment magnitude must be in [0, {_BINS - 1}], got {magnitude}")
    level = magnitude / (_BINS - 1)
    out = x.clone()
    n = x.shape[0]
    for _ in range(num_ops):
        choice = torch.randint(len(RANDAUGMENT_OPS), (n,), generator=gen, device=x.device)
        flip = torch.rand(n, generator=gen, device=x.device) < 0.5
        signed = torch.where(flip, -1.0, 1.0).to(x.dtype)
        for i, op in enumerate(RANDAUGMENT_OPS[1:], start=1):
            chosen = choice == i
            if not bool(chosen.any()):
                continue
            apply = _affine if i <= 5 else _photometric
            out[chosen] = apply(out[chosen], op, signed[chosen], level)
    return out


class DeviationNet(nn.Module):
    """DFT: logits of fc(g_t(x) - g_f(x) + ε); g_f is a frozen copy, both bodies stay in eval.

    Returns (logits, deviation feature) like FerNet.
    """

    def __init__(self, base: FerNet, num_classes: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.body = base.body
        self.frozen = copy.deepcopy(base.body).requires_grad_(False)
        self.num_features = base.num_features
        self.fc = nn.Linear(base.num_features, num_classes)
        self.eps = eps

    def train(self, mode: bool = True) -> DeviationNet:
        """Set the mode; both backbones always stay in eval (frozen BN statistics, no dropout)."""
        super().train(mode)
        self.body.eval()
        self.frozen.eval()
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            fixed = self.frozen(x).mean(dim=(2, 3))
        tuned = self.body(x).mean(dim=(2, 3))
        feature = tuned - fixed + (self.eps if self.training else 0.0)
        return self.fc(feature), feature


@dataclass(frozen=True)
class AbawOptions:
    """§6 settings; ``weights`` empty = the FERPlus default (see the module docstring)."""

    alpha: float = 0.2
    weighted: bool = True
    weights: tuple[float, ...] = ()
    upsample: bool = True
    max_ratio: float = 0.0
    epoch: str = "same"
    ops: int = 2
    magnitude: int = 9
    dft: bool = False
    eps: float = 1e-6


class AbawMethod(Method):
    """The ABAW4 recipe; each part is switched by an option for the ablation rows."""

    name: ClassVar[str] = "abaw"
    eval_modes: ClassVar[tuple[str, ...]] = ("H",)
    options_type: ClassVar[type] = AbawOptions

    def __init__(self, options: dict[str, Any], criterion: nn.Module, card: ModelCard) -> None:
        super().__init__(options, criterion, card)
        opt = self.options
        if opt.epoch not in ("same", "pool"):
            raise ConfigError(f"abaw epoch must be 'same' or 'pool', got {opt.epoch!r}")
        if opt.weights and len(opt.weights) != card.num_classes:
            raise ConfigError(f"abaw weights need {card.num_classes} values, got {opt.weights}")
        self.class_weights: torch.Tensor | None = None
        self.seen: torch.Tensor | None = None
        self.gen: torch.Generator | None = None
        self.stats = {"pool": 0, "augmented_repeats": 0}

    def wrap(self, base: FerNet) -> nn.Module:
        if self.options.dft:
            return DeviationNet(base, self.card.num_classes, self.options.eps)
        return base

    def order(self, targets: Targets, gen: torch.Generator) -> torch.Tensor:
        if not self.options.upsample:
            return super().order(targets, gen)
        pool = upsample_pool(targets.labels, gen, self.options.max_ratio)
        pool = pool[torch.randperm(len(pool), generator=gen, device=pool.device)]
        self.stats["pool"] = len(pool)
        self.seen = torch.zeros(len(targets.labels), dtype=torch.bool, device=pool.device)
        return pool[: len(targets.labels)] if self.options.epoch == "same" else pool

    def loss(self, model: nn.Module, batch: Batch, targets: Targets) -> torch.Tensor:
        logits, _ = model(self._augment_repeats(batch))
        return weighted_smoothed_ce(logits, batch.soft, self._weights(targets), self.options.alpha)

    def _weights(self, targets: Targets) -> torch.Tensor:
        if self.class_weights is None:
            k = targets.soft.shape[1]
            if not self.options.weighted:
                weights = torch.ones(k)
            elif self.options.weights:
                weights = torch.tensor(self.options.weights, dtype=torch.float32)
            else:
                weights = balanced_class_weights(torch.bincount(targets.labels.cpu(), minlength=k))
            self.class_weights = weights.to(targets.soft.device)
        return self.class_weights

    def _augment_repeats(self, batch: Batch) -> torch.Tensor:
        """The batch with RandAugment on samples already drawn earlier in this epoch."""
        if self.seen is None:
            return batch.x
        repeat = self.seen[batch.index] | ~first_occurrences(batch.index)
        self.seen[batch.index] = True
        if not bool(repeat.any()):
            return batch.x
        if self.gen is None:
            self.gen = torch.Generator(device=batch.x.device).manual_seed(4321)
        mean = torch.tensor(self.card.mean, device=batch.x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.card.std, device=batch.x.device).view(1, -1, 1, 1)
        unit = (batch.x[repeat] * std + mean).clamp(0.0, 1.0)
        unit = rand_augment(unit, self.options.ops, self.options.magnitude, self.gen)
        x = batch.x.clone()
        x[repeat] = ((unit - mean) / std).to(x.dtype)
        self.stats["augmented_repeats"] += int(repeat.sum())
        return x

    def summary(self) -> dict[str, Any]:
        weights = None if self.class_weights is None else self.class_weights.tolist()
        return {**self.stats, "class_weights": weights}
