"""The noisy-label protocol: seeded symmetric label flips, and what relabeling did to them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from fer_live.trainer.methods.protocol import Targets


def flip_labels(
    labels: torch.Tensor, rate: float, num_classes: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip exactly ``round(rate * N)`` labels, each to a different class drawn uniformly.

    Args:
        labels: int64 (N,) clean labels.
        rate: Fraction to flip, in [0, 1).
        num_classes: K.
        seed: Seed of the flip (the same seed gives the same noisy set on every machine).

    Returns:
        (noisy labels, bool mask of the flipped samples), on the labels' device.
    """
    gen = torch.Generator().manual_seed(seed)
    n = labels.shape[0]
    flipped = torch.zeros(n, dtype=torch.bool)
    flipped[torch.randperm(n, generator=gen)[: round(rate * n)]] = True
    # An offset in 1..K-1 added mod K always lands on another class, uniformly.
    offset = torch.randint(1, num_classes, (n,), generator=gen)
    noisy = torch.where(flipped, (labels.cpu() + offset) % num_classes, labels.cpu())
    return noisy.to(labels.device), flipped.to(labels.device)


def relabel_stats(targets: Targets) -> dict[str, int]:
    """Counts of flipped labels, how many relabeling repaired, and clean labels it broke."""
    flipped = targets.given != targets.clean
    changed = targets.labels != targets.given
    return {
        "flipped": int(flipped.sum()),
        "relabeled": int(changed.sum()),
        "repaired": int((flipped & (targets.labels == targets.clean)).sum()),
        "broken": int((~flipped & (targets.labels != targets.clean)).sum()),
    }
