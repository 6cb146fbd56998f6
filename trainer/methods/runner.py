"""Fine-tune a trained model with one method: baseline, MRE or end-to-end GUS, any loss.

A small runner beside ``trainer.train`` (which stays the plain recipe): it starts from a
``fer-train`` checkpoint, wraps the model for the method, trains with AdamW (new layers at
10x the backbone rate), evaluates every inference mode on Valid after each epoch and writes
``runs/<name>/{methods_log.jsonl, best_method.pt}``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from realtime.errors import ConfigError
from trainer.config import TrainConfig
from trainer.data.augment import augment
from trainer.data.tensors import TensorSplit, load_split
from trainer.evaluate import load_checkpoint
from trainer.methods.gus import GusHead, GusNet
from trainer.methods.mixed_loss import make_loss
from trainer.methods.mre import MreConfig, MreNet, mre_loss

logger = logging.getLogger(__name__)
METHODS = ("baseline", "mre", "gus")
EVAL_MODES = {"baseline": ("H",), "mre": ("H", "M", "H+M"), "gus": ("isolated", "batch")}


@dataclass(frozen=True)
class MethodConfig:
    """Settings of one method run."""

    checkpoint: str
    name: str
    method: str = "baseline"
    loss: str = "ce"
    epochs: int = 1
    batch_size: int = 128
    lr: float = 1e-4
    head_lr_mult: float = 10.0
    weight_decay: float = 1e-4
    max_train: int = 0
    max_eval: int = 0
    out_dir: str = "runs"
    seed: int = 0
    device: str = "cpu"
    mre: MreConfig = MreConfig()

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {METHODS}, got {self.method!r}")


def wrap_model(cfg: MethodConfig) -> tuple[nn.Module, list[nn.Parameter], TrainConfig]:
    """Load the checkpoint and wrap it for the method; returns (model, new params, train cfg)."""
    base, card, tcfg = load_checkpoint(Path(cfg.checkpoint))
    if cfg.method == "mre":
        model = MreNet(base, card.num_classes, cfg.mre, card.channels)
        new = [*model.mid_conv.parameters(), *model.mid_fc.parameters()]
    elif cfg.method == "gus":
        model = GusNet(base, GusHead(base.num_features, card.num_classes))
        new = list(model.head.parameters())
    else:
        model, new = base, []
    return model, new, tcfg


def _forward_loss(
    model: nn.Module, method: str, x: torch.Tensor, soft: torch.Tensor, labels: torch.Tensor,
    base: nn.Module, mre_weight: float,
) -> torch.Tensor:  # fmt: skip
    if method == "mre":
        high, mids, _ = model(x, labels)
        return mre_loss(high, mids, soft, mre_weight, base)
    logits, _ = model(x)
    return base(logits, soft)


def train_epoch(
    model: nn.Module, opt: torch.optim.Optimizer, data: TensorSplit, cfg: MethodConfig,
    tcfg: TrainConfig, base: nn.Module, gen: torch.Generator,
) -> float:  # fmt: skip
    """One epoch; returns the mean loss."""
    model.train()
    order = torch.randperm(len(data), generator=gen, device=data.x.device)
    total, count = 0.0, 0
    for start in range(0, len(order) - cfg.batch_size // 2, cfg.batch_size):
        index = order[start : start + cfg.batch_size]
        x = augment(data.x[index], tcfg.aug, gen)
        loss = _forward_loss(
            model, cfg.method, x, data.soft[index], data.labels[index], base, cfg.mre.weight
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        total, count = total + float(loss.detach()) * len(index), count + len(index)
    return total / max(count, 1)


@torch.no_grad()
def evaluate_modes(model: nn.Module, method: str, data: TensorSplit) -> dict[str, float]:
    """Valid accuracy in every inference mode of the method (GUS batch mode: transductive)."""
    model.eval()
    results = {}
    for mode in EVAL_MODES[method]:
        if method == "mre":
            model.infer_mode = mode
        elif method == "gus":
            model.mode = mode
        preds = [model(data.x[i : i + 256])[0].argmax(dim=1) for i in range(0, len(data), 256)]
        acc = float((torch.cat(preds) == data.labels).float().mean())
        results[f"valid_acc_{mode}" + ("_transductive" if mode == "batch" else "")] = acc
    return results


def _optimizer(model: nn.Module, new: list[nn.Parameter], cfg: MethodConfig) -> torch.optim.AdamW:
    new_ids = {id(p) for p in new}
    old = [p for p in model.parameters() if id(p) not in new_ids]
    groups = [{"params": old, "lr": cfg.lr}]
    if new:
        groups.append({"params": new, "lr": cfg.lr * cfg.head_lr_mult})
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)


def run_method(cfg: MethodConfig) -> list[dict[str, Any]]:
    """Fine-tune per ``cfg``; returns the per-epoch records (also in ``methods_log.jsonl``)."""
    torch.manual_seed(cfg.seed)
    model, new, tcfg = wrap_model(cfg)
    probe = load_checkpoint(Path(cfg.checkpoint))[1]
    root, device = Path(tcfg.data_root), torch.device(cfg.device)
    train = load_split("ferplus", root, "train", probe, limit=cfg.max_train).to(device)
    valid = load_split("ferplus", root, "valid", probe, limit=cfg.max_eval).to(device)
    model = model.to(device)
    run_dir = Path(cfg.out_dir) / cfg.name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "method_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    base, opt = make_loss(cfg.loss), _optimizer(model, new, cfg)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    records, best = [evaluate_modes(model, cfg.method, valid) | {"epoch": 0}], -1.0
    logger.info("before fine-tuning: %s", records[0])
    for epoch in range(cfg.epochs):
        base.set_epoch(epoch)  # type: ignore[operator]
        if isinstance(model, MreNet):
            model.detach_mid = epoch < cfg.mre.detach_fraction * cfg.epochs
        start = time.perf_counter()
        loss = train_epoch(model, opt, train, cfg, tcfg, base, gen)
        record = evaluate_modes(model, cfg.method, valid)
        record.update(epoch=epoch + 1, loss=round(loss, 5), train_s=time.perf_counter() - start)
        records.append(record)
        with open(run_dir / "methods_log.jsonl", "a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
        logger.info("%s", record)
        score = max(v for k, v in record.items() if k.startswith("valid_acc") and "trans" not in k)
        if score > best:
            best = score
            torch.save({"model": model.state_dict(), "config": asdict(cfg)}, run_dir / "best.pt")
    return records


def smoke_losses(cfg: MethodConfig, steps: int = 5) -> list[float]:
    """Repeated steps on one fixed batch (no augmentation): the loss must fall (tests, smoke)."""
    torch.manual_seed(cfg.seed)
    model, new, tcfg = wrap_model(cfg)
    probe = load_checkpoint(Path(cfg.checkpoint))[1]
    data = load_split("ferplus", Path(tcfg.data_root), "train", probe, limit=cfg.max_train)
    base, opt = make_loss(cfg.loss), _optimizer(model, new, replace(cfg, head_lr_mult=1.0))
    model.train()
    losses = []
    for _ in range(steps):
        loss = _forward_loss(
            model, cfg.method, data.x, data.soft, data.labels, base, cfg.mre.weight
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses
