"""Train one method (baseline, MRE, GUS, ...) under one protocol and report Valid and Test.

Every row of the methods' accuracy table comes from here, so the rows differ only in the
method: same backbone init (ImageNet or a ``fer-train`` checkpoint), data, noise, schedule
(AdamW, warm-up + cosine), augmentation, flip-TTA evaluation and selection on Valid. Outputs in
``runs/<name>/``: ``method_config.json``, ``methods_log.jsonl`` (per epoch), ``result.json``
(Valid and Test accuracy in every inference mode of the best-on-Valid epoch, noise and
relabeling figures) and ``outputs_{valid,test}.npz`` (probabilities per mode, embeddings,
labels) for merging without re-running the models.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fer_live.errors import ConfigError
from fer_live.infer.card import ModelCard
from fer_live.trainer.config import DEFAULT_PRETRAINED, RunSettings, TrainConfig
from fer_live.trainer.data.augment import augment
from fer_live.trainer.data.tensors import TensorSplit, load_split
from fer_live.trainer.engine import cosine_lr
from fer_live.trainer.evaluate import load_checkpoint
from fer_live.trainer.methods.mixed_loss import make_loss
from fer_live.trainer.methods.noise import flip_labels, relabel_stats
from fer_live.trainer.methods.protocol import Batch, Method, Targets
from fer_live.trainer.methods.registry import method_class
from fer_live.trainer.methods.run_state import (
    load_method_state,
    load_resume,
    method_state,
    save_resume,
)
from fer_live.trainer.train import build_model, training_card

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MethodConfig(RunSettings):
    """Settings of one method run: the shared ``RunSettings`` plus the method and its options.

    ``init`` is ``imagenet`` (the architecture's ImageNet weights where shipped, else random)
    or a ``fer-train`` checkpoint to fine-tune. ``hard_targets`` trains on majority labels as
    the papers do (FERPlus vote distributions otherwise). ``noise`` flips that fraction of the
    training labels (seeded by ``noise_seed``) to a different class. ``max_train`` and
    ``max_eval`` cut the splits for reduced-scale and smoke runs (``max_eval`` cuts Test too).
    """

    # The method protocol's own schedule: short runs, half an epoch of warm-up.
    epochs: int = 4
    warmup_epochs: float = 0.5
    method: str = "baseline"
    options: dict[str, Any] = field(default_factory=dict)
    init: str = "imagenet"
    loss: str = "ce"
    head_lr_mult: float = 1.0
    hard_targets: bool = True
    noise: float = 0.0
    noise_seed: int = 0

    def __post_init__(self) -> None:
        method_class(self.method)
        if not 0.0 <= self.noise < 1.0 or self.epochs < 1 or self.batch_size < 2:
            raise ConfigError(f"need 0 <= noise < 1, epochs >= 1, batch_size >= 2: {self}")


def build_start(cfg: MethodConfig, num_classes: int, classes: tuple[str, ...]):  # noqa: ANN201
    """The starting backbone and its card: ImageNet init or a fer-train checkpoint."""
    if cfg.init != "imagenet":
        model, card, _ = load_checkpoint(Path(cfg.init))
        return model, card
    pretrained = DEFAULT_PRETRAINED.get(cfg.arch)
    tcfg = TrainConfig(
        name=cfg.name, arch=cfg.arch, input_size=cfg.input_size, channels=cfg.channels,
        pretrained=str(pretrained) if pretrained and pretrained.is_file() else None,
    )  # fmt: skip
    model = build_model(tcfg, num_classes)
    return model, training_card(tcfg, classes, model.num_features)


def make_targets(train: TensorSplit, cfg: MethodConfig) -> Targets:
    """The runner's training labels: hard or soft, with ``cfg.noise`` of them flipped."""
    clean = train.labels.clone()
    given, flipped = flip_labels(clean, cfg.noise, train.soft.shape[1], cfg.noise_seed)
    hard = nn.functional.one_hot(given, train.soft.shape[1]).to(train.soft)
    soft = hard if cfg.hard_targets else torch.where(flipped[:, None], hard, train.soft)
    return Targets(soft.clone(), given.clone(), given, clean)


def _optimizer(model: nn.Module, new: list[nn.Parameter], cfg: MethodConfig) -> torch.optim.AdamW:
    new_ids = {id(p) for p in new}
    old = [p for p in model.parameters() if id(p) not in new_ids and p.requires_grad]
    fresh = [p for p in new if p.requires_grad]
    groups = [{"params": old, "lr_mult": 1.0}]
    if fresh:
        groups.append({"params": fresh, "lr_mult": cfg.head_lr_mult})
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


@dataclass
class _Loop:
    """What one run carries from epoch to epoch."""

    model: nn.Module
    method: Method
    opt: torch.optim.AdamW
    targets: Targets
    x: torch.Tensor
    gen: torch.Generator
    step: int = 0
    total_steps: int = 1


def train_epoch(
    loop: _Loop, cfg: MethodConfig, epoch: int, tick: Callable[[], None] | None = None
) -> float:
    """One epoch in the method's order; returns the mean loss. ``tick`` is called per batch."""
    loop.model.train()
    order = loop.method.order(loop.targets, loop.gen)
    starts = range(0, len(order) - cfg.batch_size // 2, cfg.batch_size)
    warmup = int(cfg.warmup_epochs * len(starts))
    total, count = 0.0, 0
    for start in starts:
        index = order[start : start + cfg.batch_size]
        lr = cosine_lr(loop.step, loop.total_steps, warmup, cfg.lr, cfg.lr * 0.01)
        for group in loop.opt.param_groups:
            group["lr"] = lr * group["lr_mult"]
        raw = loop.x[index]
        x = augment(raw, cfg.aug, loop.gen).contiguous(memory_format=torch.channels_last)
        batch = Batch(
            x, raw, loop.targets.soft[index], loop.targets.labels[index], index,
            loop.step / loop.total_steps, epoch,
        )  # fmt: skip
        loss = loop.method.loss(loop.model, batch, loop.targets)
        loop.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(loop.model.parameters(), 5.0)
        loop.opt.step()
        loop.method.after_step(loop.model)
        loop.step += 1
        total, count = total + float(loss.detach()) * len(index), count + len(index)
        if tick is not None:
            tick()
    return total / max(count, 1)


@torch.no_grad()
def predict_mode(
    model: nn.Module, method: Method, x: torch.Tensor, mode: str, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Flip-TTA probabilities and embeddings (N, K), (N, D) in inference mode ``mode``."""
    model.eval()
    probs, embs = [], []
    for i in range(0, len(x), batch_size):
        chunk = x[i : i + batch_size].contiguous(memory_format=torch.channels_last)
        logits, emb = method.predict(model, chunk, mode)[:2]
        flipped = method.predict(model, torch.flip(chunk, dims=[3]), mode)[0]
        probs.append(((logits.float().softmax(1) + flipped.float().softmax(1)) / 2).cpu())
        embs.append(emb.float().cpu())
    return torch.cat(probs).numpy(), torch.cat(embs).numpy()


def predict_modes(
    model: nn.Module, method: Method, x: torch.Tensor
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``predict_mode`` in every inference mode of the method."""
    return {mode: predict_mode(model, method, x, mode) for mode in method.eval_modes}


def accuracies(outputs: dict[str, tuple[np.ndarray, np.ndarray]], labels: torch.Tensor):  # noqa: ANN201
    """Accuracy per mode (``batch`` modes are transductive and named so)."""
    y = labels.cpu().numpy()
    return {
        mode + ("_transductive" if mode == "batch" else ""): float((p.argmax(1) == y).mean())
        for mode, (p, _) in outputs.items()
    }


def _save_outputs(path: Path, outputs: dict, labels: torch.Tensor) -> None:
    arrays = {f"probs_{m}": p.astype(np.float32) for m, (p, _) in outputs.items()}
    first = next(iter(outputs.values()))[1]
    np.savez_compressed(
        path, embedding=first.astype(np.float16), labels=labels.cpu().numpy(), **arrays
    )


def probe_card(cfg: MethodConfig) -> ModelCard:
    """The preprocessing the runner's data needs (labels come from the data)."""
    half = (0.5,) * cfg.channels
    return ModelCard(
        name="probe", labels=("x",), input_size=cfg.input_size, channels=cfg.channels,
        mean=half, std=half, outputs=("logits",),
    )  # fmt: skip


def _setup(cfg: MethodConfig) -> tuple[_Loop, TensorSplit, ModelCard]:
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    root = Path(cfg.data_root)
    probe = probe_card(cfg)
    train = load_split("ferplus", root, "train", probe, limit=cfg.max_train)
    valid = load_split("ferplus", root, "valid", probe, limit=cfg.max_eval)
    base, card = build_start(cfg, len(train.classes), train.classes)
    method = method_class(cfg.method)(dict(cfg.options), make_loss(cfg.loss), card)
    model = method.wrap(base).to(device).to(memory_format=torch.channels_last)
    targets = make_targets(train.to(device), cfg)
    opt = _optimizer(model, method.new_parameters(model), cfg)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    loop = _Loop(model, method, opt, targets, train.x.to(device), gen)
    steps = len(range(0, len(targets.labels) - cfg.batch_size // 2, cfg.batch_size))
    loop.total_steps = max(1, steps * cfg.epochs)
    return loop, valid.to(device), card


def run_method(
    cfg: MethodConfig, resume: bool = False, progress: Any | None = None
) -> dict[str, Any]:
    """Train per ``cfg``, keep the best-on-Valid epoch, evaluate it on Valid and Test.

    Args:
        cfg: The run's settings.
        resume: Continue from ``runs/<name>/resume.pt`` (written after every epoch) if present.
        progress: A ``rich.progress.Progress`` to show epochs on, or None.

    Returns:
        The result record (also written to ``runs/<name>/result.json``).
    """
    loop, valid, card = _setup(cfg)
    run_dir = Path(cfg.out_dir) / cfg.name
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = load_resume(run_dir) if resume else None
    if saved is None:
        (run_dir / "method_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
        (run_dir / "methods_log.jsonl").write_text("")
        best: dict[str, Any] = {"acc": -1.0, "state": None, "epoch": 0, "train_s": 0.0, "done": 0}
    else:
        best = _resume(loop, cfg, saved)
        logger.info("%s: resumed after epoch %d", cfg.name, best["done"])
    primary = loop.method.eval_modes[0]
    tick = None
    if progress is not None:
        task = progress.add_task(cfg.name, total=loop.total_steps, completed=loop.step)
        tick = lambda: progress.advance(task)  # noqa: E731
    for epoch in range(best["done"], cfg.epochs):
        loop.method.start_epoch(loop.model, epoch, cfg.epochs)
        loop.method.criterion.set_epoch(epoch)  # type: ignore[operator]
        start = time.perf_counter()
        loss = train_epoch(loop, cfg, epoch, tick)
        best["train_s"] += time.perf_counter() - start
        record = accuracies(predict_modes(loop.model, loop.method, valid.x), valid.labels)
        record.update(epoch=epoch + 1, loss=round(loss, 5), train_s=round(best["train_s"], 1))
        with open(run_dir / "methods_log.jsonl", "a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
        logger.info("%s epoch %d: %s", cfg.name, epoch + 1, record)
        if record[primary] > best["acc"]:
            best.update(acc=record[primary], epoch=epoch + 1)
            best["state"] = copy.deepcopy(loop.model.state_dict())
        best["done"] = epoch + 1
        save_resume(run_dir, _resume_state(loop, best, cfg))
    loop.model.load_state_dict(best["state"])
    torch.save({"model": best["state"], "config": asdict(cfg), "card": card.to_json()},
               run_dir / "best_method.pt")  # fmt: skip
    return _finish(cfg, loop, valid, run_dir, best["epoch"], best["train_s"])


def _resume_state(loop: _Loop, best: dict[str, Any], cfg: MethodConfig) -> dict[str, Any]:
    return {
        "config": asdict(cfg), "model": loop.model.state_dict(), "opt": loop.opt.state_dict(),
        "step": loop.step, "gen": loop.gen.get_state(), "rng": torch.get_rng_state(),
        "soft": loop.targets.soft, "labels": loop.targets.labels,
        "method": method_state(loop.method), "best": best,
    }  # fmt: skip


def _resume(loop: _Loop, cfg: MethodConfig, saved: dict[str, Any]) -> dict[str, Any]:
    """Put a resume checkpoint back into a freshly set-up loop; returns the best-so-far record."""
    if json.dumps(saved["config"], sort_keys=True) != json.dumps(asdict(cfg), sort_keys=True):
        raise ConfigError(f"runs/{cfg.name} was started with other settings; use another --name")
    loop.model.load_state_dict(saved["model"])
    loop.opt.load_state_dict(saved["opt"])
    loop.step = int(saved["step"])
    loop.gen.set_state(saved["gen"])
    torch.set_rng_state(saved["rng"])
    loop.targets.soft.copy_(saved["soft"])
    loop.targets.labels.copy_(saved["labels"])
    load_method_state(loop.method, saved["method"])
    return dict(saved["best"])


def _finish(
    cfg: MethodConfig, loop: _Loop, valid: TensorSplit, run_dir: Path, best_epoch: int,
    train_s: float,
) -> dict[str, Any]:  # fmt: skip
    test = load_split("ferplus", Path(cfg.data_root), "test", probe_card(cfg), cfg.max_eval).to(
        valid.x.device
    )
    result: dict[str, Any] = {"name": cfg.name, "method": cfg.method, "best_epoch": best_epoch}
    for split, data in (("valid", valid), ("test", test)):
        outputs = predict_modes(loop.model, loop.method, data.x)
        result[split] = accuracies(outputs, data.labels)
        _save_outputs(run_dir / f"outputs_{split}.npz", outputs, data.labels)
    images = cfg.epochs * len(loop.targets.labels)
    result.update(
        primary_mode=loop.method.eval_modes[0], train_s=round(train_s, 1),
        train_img_per_s=round(images / max(train_s, 1e-9), 1),
        labels=relabel_stats(loop.targets), method_summary=loop.method.summary(),
        config=asdict(cfg),
    )  # fmt: skip
    (run_dir / "result.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result


def score_checkpoint(cfg: MethodConfig) -> dict[str, Any]:
    """Evaluate ``cfg.init`` (a fer-train checkpoint) untrained, as a run other runs merge with.

    Writes the same ``result.json`` and ``outputs_*.npz`` as a trained run (``best_epoch`` 0).
    """
    if cfg.init == "imagenet":
        raise ConfigError("scoring needs a fer-train checkpoint as --init")
    loop, valid, card = _setup(cfg)
    run_dir = Path(cfg.out_dir) / cfg.name
    run_dir.mkdir(parents=True, exist_ok=True)
    state = {"model": loop.model.state_dict(), "config": asdict(cfg), "card": card.to_json()}
    torch.save(state, run_dir / "best_method.pt")
    return _finish(cfg, loop, valid, run_dir, 0, 0.0)


def smoke_losses(cfg: MethodConfig, steps: int = 5) -> list[float]:
    """Repeated steps on one fixed batch (no augmentation): the loss must fall (tests, smoke)."""
    loop, _, _ = _setup(cfg)
    loop.model.train()
    index = torch.arange(len(loop.targets.labels))
    losses = []
    for step in range(steps):
        batch = Batch(
            loop.x, loop.x, loop.targets.soft, loop.targets.labels, index, step / steps, 0
        )
        loss = loop.method.loss(loop.model, batch, loop.targets)
        loop.opt.zero_grad(set_to_none=True)
        loss.backward()
        loop.opt.step()
        loop.method.after_step(loop.model)
        losses.append(float(loss.detach()))
    return losses
