"""The model contract shared by every registered architecture.

Every model maps ``(B, C, S, S)`` input to ``(logits, embedding)``: ``forward_features`` gives the
pooled embedding ``(B, D)`` and ``forward_head`` the logits ``(B, num_classes)``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fer_live.errors import ModelError


class FerNet(nn.Module):
    """A convolutional body, global average pooling and a linear head.

    Args:
        body: Module mapping (B, C, S, S) to a feature map (B, D, h, w).
        num_features: D, the embedding size.
        num_classes: Number of logits.
        drop_rate: Dropout before the classifier.
    """

    def __init__(
        self, body: nn.Module, num_features: int, num_classes: int, drop_rate: float = 0.0
    ):
        super().__init__()
        self.body = body
        self.num_features = num_features
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled embedding (B, D)."""
        return self.body(x).mean(dim=(2, 3))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) from the embedding."""
        return self.fc(self.drop(features))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.forward_features(x)
        return self.forward_head(features), features

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a fresh one of ``num_classes`` outputs."""
        self.fc = nn.Linear(self.num_features, num_classes)


def block_output_sides(body: nn.Sequential, in_chans: int, size: int = 64) -> list[int]:
    """Spatial side of each block's output for a ``size`` input (eval mode, no gradient)."""
    x, sides = torch.zeros(1, in_chans, size, size), []
    was_training = body.training
    body.eval()
    with torch.no_grad():
        for block in body:
            x = block(x)
            sides.append(int(x.shape[-1]))
    body.train(was_training)
    return sides


def adapt_stem_weight(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Adapt a pretrained RGB stem kernel (O, 3, k, k) to ``in_chans`` inputs.

    One channel sums the RGB kernels (a gray image is R = G = B, so responses are preserved);
    three channels keep the kernel.
    """
    if in_chans == weight.shape[1]:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    raise ModelError(f"cannot adapt a {weight.shape[1]}-channel stem to {in_chans} channels")


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """Load a weights file holding a state dict (optionally under ``state_dict``/``model``).

    Raises:
        ModelError: The file is missing or holds no state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"pretrained weights not found: {path}")
    data = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "model_ema"):
        if isinstance(data, dict) and key in data and isinstance(data[key], dict):
            data = data[key]
    if not isinstance(data, dict):
        raise ModelError(f"{path} does not hold a state dict")
    return data
