"""Batch augmentation written in torch, so it runs on whatever device holds the batch.

Every function takes and returns a normalized float batch (B, C, S, S) and draws its randomness
from the given ``torch.Generator`` (on the batch's device) so runs are reproducible.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fer_live.trainer.config import AugConfig


def _uniform(
    n: int, low: float, high: float, gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (high - low) + low


def random_affine(x: torch.Tensor, cfg: AugConfig, gen: torch.Generator) -> torch.Tensor:
    """Random flip, rotation, zoom and shift per image (bilinear, border replicated)."""
    n, dev = x.shape[0], x.device
    angle = _uniform(n, -cfg.rotate_deg, cfg.rotate_deg, gen, dev) * (math.pi / 180.0)
    zoom = _uniform(n, cfg.scale[0], cfg.scale[1], gen, dev)
    flip = torch.where(torch.rand(n, generator=gen, device=dev) < cfg.flip, -1.0, 1.0)
    tx = _uniform(n, -cfg.shift, cfg.shift, gen, dev) * 2.0
    ty = _uniform(n, -cfg.shift, cfg.shift, gen, dev) * 2.0
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1
    )
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_photometric(x: torch.Tensor, cfg: AugConfig, gen: torch.Generator) -> torch.Tensor:
    """Random contrast around each image's mean, then a random brightness offset."""
    n, dev = x.shape[0], x.device
    contrast = _uniform(n, 1.0 - cfg.contrast, 1.0 + cfg.contrast, gen, dev).view(n, 1, 1, 1)
    brightness = _uniform(n, -cfg.brightness, cfg.brightness, gen, dev).view(n, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * contrast.to(x.dtype) + mean + brightness.to(x.dtype)


def random_erase(x: torch.Tensor, cfg: AugConfig, gen: torch.Generator) -> torch.Tensor:
    """Zero (the normalized mean) one random rectangle in a fraction ``erase_prob`` of images."""
    n, _, h, w = x.shape
    dev = x.device
    area = _uniform(n, cfg.erase_area[0], cfg.erase_area[1], gen, dev)
    aspect = torch.exp(_uniform(n, math.log(0.5), math.log(2.0), gen, dev))
    eh = (torch.sqrt(area * aspect) * h).clamp(1, h)
    ew = (torch.sqrt(area / aspect) * w).clamp(1, w)
    y0 = torch.rand(n, generator=gen, device=dev) * (h - eh)
    x0 = torch.rand(n, generator=gen, device=dev) * (w - ew)
    ys = torch.arange(h, device=dev).view(1, h, 1)
    xs = torch.arange(w, device=dev).view(1, 1, w)
    inside = (
        (ys >= y0.view(n, 1, 1))
        & (ys < (y0 + eh).view(n, 1, 1))
        & (xs >= x0.view(n, 1, 1))
        & (xs < (x0 + ew).view(n, 1, 1))
    )
    chosen = (torch.rand(n, generator=gen, device=dev) < cfg.erase_prob).view(n, 1, 1)
    return x.masked_fill((inside & chosen).unsqueeze(1), 0.0)


def random_blur(x: torch.Tensor, cfg: AugConfig, gen: torch.Generator) -> torch.Tensor:
    """Gaussian blur of a fraction ``blur_prob`` of images, sigma drawn per image.

    A separable per-image kernel (one group per image and channel), edges replicated.
    Draws nothing when ``blur_prob`` is 0, so runs without blur keep their random stream.
    """
    if cfg.blur_prob <= 0.0:
        return x
    n, c, h, w = x.shape
    dev = x.device
    side = min(h, w)
    sigma = _uniform(n, cfg.blur_sigma[0], cfg.blur_sigma[1], gen, dev) * side
    chosen = torch.rand(n, generator=gen, device=dev) < cfg.blur_prob
    radius = max(1, math.ceil(3.0 * cfg.blur_sigma[1] * side))
    taps = torch.arange(-radius, radius + 1, device=dev, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (taps.view(1, -1) / sigma.view(-1, 1)) ** 2)
    # an image left sharp gets the identity kernel
    kernel = torch.where(chosen.view(-1, 1), kernel, (taps == 0).float().view(1, -1))
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0).to(x.dtype)
    k = kernel.shape[1]
    y = F.pad(x.reshape(1, n * c, h, w), (radius, radius, radius, radius), mode="replicate")
    y = F.conv2d(y, kernel.view(n * c, 1, 1, k), groups=n * c)
    y = F.conv2d(y, kernel.view(n * c, 1, k, 1), groups=n * c)
    return y.reshape(n, c, h, w)


def augment(x: torch.Tensor, cfg: AugConfig, gen: torch.Generator) -> torch.Tensor:
    """Apply affine, blur, photometric and erasing augmentation to a normalized batch
    (B, C, S, S)."""
    x = random_affine(x, cfg, gen)
    x = random_blur(x, cfg, gen)
    x = random_photometric(x, cfg, gen)
    return random_erase(x, cfg, gen)
