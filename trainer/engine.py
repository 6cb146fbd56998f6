"""Training steps, the learning-rate schedule, weight EMA and batched prediction."""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fer_live.trainer.config import TrainConfig
from fer_live.trainer.data.augment import augment
from fer_live.trainer.data.tensors import TensorSplit


def cosine_lr(step: int, total: int, warmup: int, base: float, floor: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay from ``base`` to ``floor``."""
    if warmup > 0 and step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + 0.5 * (base - floor) * (1.0 + math.cos(math.pi * progress))


class ModelEma:
    """Exponential moving average of a model's weights (buffers are copied)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_state = self.module.state_dict()
        for key, value in model.state_dict().items():
            target = ema_state[key]
            if value.dtype.is_floating_point:
                target.mul_(self.decay).add_(value.detach(), alpha=1.0 - self.decay)
            else:
                target.copy_(value)


class ProgressSink(Protocol):
    """Anything that can count processed images (a progress-bar handle)."""

    def advance(self, n: int) -> None: ...


@dataclass(frozen=True)
class EpochStats:
    loss: float
    images: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.images / max(self.seconds, 1e-9)


def autocast(cfg: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager[None]:
    """bfloat16 autocast when ``cfg.amp`` (CUDA, or a CPU with native bf16 such as AVX512-BF16/AMX,
    where it about doubles the training speed); a no-op otherwise."""
    if not cfg.amp:
        return contextlib.nullcontext()
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cpu" and cpu_has_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@functools.cache
def cpu_has_bf16() -> bool:
    """True when the CPU computes bf16 natively; emulated bf16 is slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def soft_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, smoothing: float
) -> torch.Tensor:
    """Cross-entropy against target distributions (B, K), optionally smoothed."""
    if smoothing > 0:
        targets = targets * (1.0 - smoothing) + smoothing / targets.shape[1]
    return -(targets * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: TensorSplit,
    cfg: TrainConfig,
    state: dict[str, int],
    gen: torch.Generator,
    ema: ModelEma | None = None,
    on_batch: ProgressSink | None = None,
) -> EpochStats:
    """One pass over ``data`` (already on the model's device) with augmentation.

    Args:
        model: The model, in train mode.
        optimizer: Its optimizer.
        data: Training tensors.
        cfg: Run config (batch size, schedule, augmentation, targets).
        state: ``{"step": int, "total_steps": int, "warmup_steps": int}``; ``step`` advances.
        gen: Random generator on the data's device.
        ema: Weight EMA to update after each step, or None.
        on_batch: Object with ``advance(n)`` (e.g. a progress handle), or None.

    Returns:
        Mean loss, image count and wall time.
    """
    model.train()
    device = data.x.device
    order = torch.randperm(len(data), generator=gen, device=device)
    batches = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
    if len(batches) > 1 and len(batches[-1]) < cfg.batch_size // 2:
        batches = batches[:-1]
    total_loss, seen, start = 0.0, 0, time.perf_counter()
    for index in batches:
        lr = cosine_lr(
            state["step"], state["total_steps"], state["warmup_steps"], cfg.lr, cfg.min_lr
        )
        for group in optimizer.param_groups:
            group["lr"] = lr
        x = augment(data.x[index], cfg.aug, gen)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        targets = (
            data.soft[index]
            if cfg.soft_targets
            else F.one_hot(data.labels[index], data.soft.shape[1]).float()
        )
        with autocast(cfg, device):
            logits, _ = model(x)
        loss = soft_cross_entropy(logits, targets, cfg.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema is not None:
            ema.update(model)
        state["step"] += 1
        total_loss += float(loss.detach()) * len(index)
        seen += len(index)
        if on_batch is not None:
            on_batch.advance(len(index))
    return EpochStats(total_loss / max(seen, 1), seen, time.perf_counter() - start)


@torch.no_grad()
def predict_logits(
    model: nn.Module, x: torch.Tensor, batch_size: int = 512, tta: bool = False
) -> np.ndarray:
    """Logits (N, K) for ``x`` (N, C, S, S); ``tta`` averages with the horizontal flip."""
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    for i in range(0, len(x), batch_size):
        batch = x[i : i + batch_size].to(device)
        if batch.is_floating_point() and device.type != "cuda":
            batch = batch.contiguous(memory_format=torch.channels_last)
        logits = model(batch)[0].float()
        if tta:
            logits = (logits + model(torch.flip(batch, dims=[3]))[0].float()) / 2.0
        outputs.append(logits.cpu())
    if not outputs:
        return np.zeros((0, 0), np.float32)
    return torch.cat(outputs).numpy()
