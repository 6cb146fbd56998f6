"""EAN's label-free invariant feature generator: perturbation views and their adversary.

METHODS.md §5.4 (``ean.ifg = pda``). The paper's DR-GAN-style generator needs identity- and
pose-labelled images (CFP), which FERPlus lacks; instead every training image gets one perturbed
view per step, drawn from three domains, and an adversary learns to tell the domain from the
backbone's stride-8 map (ResNet ``layer2``, "Con_v3") while the backbone learns to make perturbed
views look clean:

* d = 1, occlusion: 1-3 rectangles covering 10-35 % of the face, half of them over the eye or the
  mouth band, filled with black, noise or a patch of another image;
* d = 2, illumination: gamma, brightness and a directional shading ramp;
* d = 3, pose proxy: horizontal flip, a perspective warp and a small rotation.

Views are made in [0, 1] intensity space (un-normalized with the card's mean/std) and returned
normalized. Bands and sizes are fractions of the crop, transferred from the spec's 224 px
aligned crop (eye band y in [70, 115], mouth band y in [150, 200]).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fer_live.errors import ConfigError
from fer_live.trainer.models.base import block_output_sides

CLEAN, OCCLUSION, ILLUMINATION, POSE = 0, 1, 2, 3
EYE_BAND = (70 / 224, 115 / 224)
MOUTH_BAND = (150 / 224, 200 / 224)


def _uniform(shape: tuple[int, ...], low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(shape, generator=gen, device=gen.device) * (high - low) + low


def occlude(u: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Occlusion view of unit-range images (B, C, S, S): 1-3 filled rectangles per image."""
    b, _, h, w = u.shape
    dev = u.device
    count = torch.randint(1, 4, (b,), generator=gen, device=dev)
    area = _uniform((b,), 0.10, 0.35, gen) / count
    ys = (torch.arange(h, device=dev).float() + 0.5).view(1, h, 1) / h
    xs = (torch.arange(w, device=dev).float() + 0.5).view(1, 1, w) / w
    out = u.clone()
    other = torch.roll(u, 1, dims=0)
    for k in range(3):
        aspect = torch.exp(_uniform((b,), math.log(0.5), math.log(2.0), gen))
        rh, rw = torch.sqrt(area * aspect).clamp(max=1.0), torch.sqrt(area / aspect).clamp(max=1.0)
        band = torch.rand(b, generator=gen, device=dev) < 0.5
        eye = torch.rand(b, generator=gen, device=dev) < 0.5
        lo = torch.where(eye, EYE_BAND[0], MOUTH_BAND[0])
        hi = torch.where(eye, EYE_BAND[1], MOUTH_BAND[1])
        anywhere = torch.rand(b, generator=gen, device=dev) * (1 - rh) + rh / 2
        cy = torch.where(band, lo + torch.rand(b, generator=gen, device=dev) * (hi - lo), anywhere)
        cx = torch.rand(b, generator=gen, device=dev) * (1 - rw) + rw / 2
        inside = ((ys - cy.view(b, 1, 1)).abs() <= rh.view(b, 1, 1) / 2) & (
            (xs - cx.view(b, 1, 1)).abs() <= rw.view(b, 1, 1) / 2
        )
        inside = (inside & (count > k).view(b, 1, 1)).unsqueeze(1)
        fill_kind = torch.randint(0, 3, (b, 1, 1, 1), generator=gen, device=dev)
        noise = torch.rand(u.shape, generator=gen, device=dev)
        fill = torch.where(fill_kind == 0, torch.zeros_like(u),
                           torch.where(fill_kind == 1, noise, other))  # fmt: skip
        out = torch.where(inside, fill, out)
    return out


def relight(u: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Illumination view: gamma in [0.4, 2.2], brightness x[0.4, 1.6], a directional ramp."""
    b, _, h, w = u.shape
    dev = u.device
    gamma = _uniform((b, 1, 1, 1), 0.4, 2.2, gen)
    gain = _uniform((b, 1, 1, 1), 0.4, 1.6, gen)
    strength = _uniform((b, 1, 1, 1), 0.3, 0.7, gen)
    theta = _uniform((b, 1, 1, 1), 0.0, 2 * math.pi, gen)
    ys = (torch.arange(h, device=dev).float() + 0.5).view(1, 1, h, 1) / h - 0.5
    xs = (torch.arange(w, device=dev).float() + 0.5).view(1, 1, 1, w) / w - 0.5
    ramp = 1.0 - strength * (xs * torch.cos(theta) + ys * torch.sin(theta)) * math.sqrt(2)
    return (u.clamp(0, 1).pow(gamma) * gain * ramp).clamp(0, 1)


def homography(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Per-sample 3x3 homographies (B, 3, 3) mapping 4 points ``src`` (B, 4, 2) onto ``dst``."""
    x, y = src[..., 0], src[..., 1]
    u, v = dst[..., 0], dst[..., 1]
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rows_u = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], -1)
    rows_v = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], -1)
    system = torch.cat([rows_u, rows_v], 1)
    h = torch.linalg.solve(system, torch.cat([u, v], 1))
    return torch.cat([h, torch.ones_like(h[:, :1])], 1).view(-1, 3, 3)


def warp_pose(u: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Pose-proxy view: horizontal flip, a perspective warp (distortion 0.3-0.5), +-10 deg."""
    b, _, h, w = u.shape
    dev = u.device
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], device=dev)
    corners = corners.expand(b, 4, 2)
    distortion = _uniform((b, 1, 1), 0.3, 0.5, gen)
    moved = corners + distortion * _uniform((b, 4, 2), -0.5, 0.5, gen)
    angle = _uniform((b,), -10.0, 10.0, gen) * (math.pi / 180)
    rot = torch.stack([torch.cos(angle), -torch.sin(angle), torch.sin(angle), torch.cos(angle)], 1)
    moved = moved @ rot.view(b, 2, 2).transpose(1, 2)
    hom = homography(corners * torch.tensor([-1.0, 1.0], device=dev), moved)
    ys, xs = torch.meshgrid(
        (torch.arange(h, device=dev).float() + 0.5) / h * 2 - 1,
        (torch.arange(w, device=dev).float() + 0.5) / w * 2 - 1,
        indexing="ij",
    )
    points = torch.stack([xs, ys, torch.ones_like(xs)], -1).view(1, -1, 3)
    mapped = points @ hom.transpose(1, 2)
    grid = (mapped[..., :2] / mapped[..., 2:].clamp(min=1e-6)).view(b, h, w, 2)
    return F.grid_sample(u, grid.to(u.dtype), padding_mode="border", align_corners=False)


def perturb(
    x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One perturbed view per normalized image and its domain in 1..3.

    Args:
        x: Normalized images (B, C, S, S).
        mean: Normalization mean (1, C, 1, 1) on the 0..1 scale (the model card's).
        std: Normalization std (1, C, 1, 1).
        gen: Random generator on ``x``'s device.

    Returns:
        The views (B, C, S, S), normalized, and their domains (B,) int64.
    """
    u = (x * std + mean).clamp(0, 1)
    domain = torch.randint(OCCLUSION, POSE + 1, (x.shape[0],), generator=gen, device=x.device)
    pick = domain.view(-1, 1, 1, 1)
    view = torch.where(pick == ILLUMINATION, relight(u, gen), warp_pose(u, gen))
    view = torch.where(pick == OCCLUSION, occlude(u, gen), view)
    return (view - mean) / std, domain


def stride_stage_index(body: nn.Module, in_chans: int, stride: int, size: int = 64) -> int:
    """Index of the last block of a Sequential body whose output has ``stride`` (8 = layer2).

    Raises:
        ConfigError: The body is not Sequential or never reaches that stride.
    """
    if not isinstance(body, nn.Sequential):
        raise ConfigError(f"EAN pda needs a Sequential backbone body, got {type(body).__name__}")
    sides = block_output_sides(body, in_chans, size)
    matches = [i for i, side in enumerate(sides) if size // side == stride]
    found = matches[-1] if matches else -1
    if found < 0:
        raise ConfigError(f"EAN pda: the backbone body has no stride-{stride} stage")
    return found


class DomainAdversary(nn.Module):
    """D of spec §5.4: Conv3x3 s2 - BN - LReLU(0.2), twice (-> 128 -> 256), GAP, Linear(256, 4)."""

    def __init__(self, in_channels: int, domains: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 128, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.2),
            nn.Conv2d(128, 256, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(256),
            nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(256, domains),
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Domain logits (B, domains) of stride-8 maps (B, in_channels, h, w)."""
        return self.net(h)
