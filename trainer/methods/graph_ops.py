"""Graph primitives shared by GUS (torch) and the numpy GUS-T smoother (METHODS.md §0.3, §2).

The numpy twins used at run time live in ``fer_live.smooth.gus_head`` (``fer_live`` must not import
``trainer`` or torch); ``tests/trainer/test_methods_graph.py`` checks both agree on the same
hand-checked matrices.

Adjacency conventions: ``A[i, j]`` is the edge weight from node ``j`` into node ``i``'s update
``H'_i = sum_j Â_ij H_j W``; every builder keeps the diagonal at 1 (cos(h, h) = 1 > t).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fer_live.errors import ConfigError

NORMS = ("mlgcn", "kipf")


def cosine_matrix(h: torch.Tensor) -> torch.Tensor:
    """Cosine similarity (N, N) of the rows of ``h`` (N, D); zero rows have similarity 0."""
    unit = F.normalize(h, dim=1, eps=1e-12)
    return unit @ unit.T


def threshold_adjacency(
    h: torch.Tensor, threshold: float, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Binarized similarity graph ``A = 1[cos(h_i, h_j) > t] * mask`` with a unit diagonal.

    The features are detached: no gradient ever flows through the graph (spec §2.4).

    Args:
        h: Node features (N, D).
        threshold: The cosine threshold t.
        mask: Optional (N, N) weights (group, time or quality masks) multiplied in.

    Returns:
        Float adjacency (N, N) on ``h``'s device.
    """
    sim = cosine_matrix(h.detach().float())
    adj = (sim > threshold).to(sim.dtype)
    if mask is not None:
        adj = adj * mask.to(adj.dtype)
    adj.fill_diagonal_(1.0)
    return adj


def group_mask(groups: torch.Tensor) -> torch.Tensor:
    """``mask[i, j] = 1`` where nodes i and j share a group id (N,), else 0."""
    return (groups[:, None] == groups[None, :]).float()


def row_norm(adj: torch.Tensor) -> torch.Tensor:
    """``A_ij / sum_j A_ij`` (spec §0.3)."""
    return adj / adj.sum(dim=1, keepdim=True).clamp(min=1e-12)


def kipf_norm(adj: torch.Tensor) -> torch.Tensor:
    """Renormalization trick: ``Ã = A + I``, ``Â = D̃^-1/2 Ã D̃^-1/2`` with degrees from Ã."""
    tilde = adj + torch.eye(adj.shape[0], dtype=adj.dtype, device=adj.device)
    inv_sqrt = tilde.sum(dim=1).pow(-0.5)
    return inv_sqrt[:, None] * tilde * inv_sqrt[None, :]


def mlgcn_norm(adj: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    """ML-GCN operator as GUS uses it (spec §0.3).

    ``A' = p A / (colsum(A) + 1e-6)``, ``Ã = A' + I``, ``d = rowsum(Ã)``,
    ``Â = D^-1/2 Ã^T D^-1/2`` (the transpose matters: A' is not symmetric).
    """
    scaled = p * adj / (adj.sum(dim=0, keepdim=True) + 1e-6)
    tilde = scaled + torch.eye(adj.shape[0], dtype=adj.dtype, device=adj.device)
    inv_sqrt = tilde.sum(dim=1).pow(-0.5)
    return inv_sqrt[:, None] * tilde.T * inv_sqrt[None, :]


def normalize_adjacency(adj: torch.Tensor, norm: str, p: float = 0.5) -> torch.Tensor:
    """Apply the named operator (``mlgcn`` = GUS paper, ``kipf``).

    Raises:
        ConfigError: Unknown norm name.
    """
    if norm == "mlgcn":
        return mlgcn_norm(adj, p)
    if norm == "kipf":
        return kipf_norm(adj)
    raise ConfigError(f"unknown graph norm {norm!r}; valid: {', '.join(NORMS)}")
