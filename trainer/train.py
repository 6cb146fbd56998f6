"""One training run: data, model, optimizer, epochs, checkpoints and the per-epoch log.

Outputs in ``runs/<name>/``: ``config.json``, ``log.jsonl`` (one JSON line per epoch),
``last.pt`` (resumable state) and ``best.pt`` (the best-on-Valid weights and card).
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fer_live.errors import ConfigError
from fer_live.infer.card import ModelCard
from fer_live.trainer.checkpoint_io import initial_weights, read_checkpoint
from fer_live.trainer.config import TrainConfig
from fer_live.trainer.data.tensors import TensorSplit, load_split
from fer_live.trainer.engine import ModelEma, predict_logits, train_one_epoch
from fer_live.trainer.models.base import FerNet
from fer_live.trainer.models.registry import create_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """Where a finished run left its outputs and how good it was on Valid."""

    run_dir: Path
    best_valid_acc: float
    best_epoch: int
    last_epoch: int


def training_card(cfg: TrainConfig, classes: tuple[str, ...], embedding_dim: int) -> ModelCard:
    """The model card a run trains for (crop framing is set at export)."""
    return ModelCard(
        name=cfg.name,
        labels=classes,
        input_size=cfg.input_size,
        channels=cfg.channels,
        mean=(0.5,) * cfg.channels,
        std=(0.5,) * cfg.channels,
        embedding_dim=embedding_dim,
        arch=cfg.arch,
        training={
            "dataset": cfg.dataset,
            "epochs": cfg.epochs,
            "config": json.loads(cfg.to_json()),
        },
    )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(cfg: TrainConfig, num_classes: int) -> FerNet:
    pretrained = Path(cfg.pretrained) if cfg.pretrained else None
    kwargs = dict(cfg.model_kwargs)
    kwargs.setdefault("drop_rate", cfg.drop_rate)
    model = create_model(cfg.arch, num_classes, cfg.channels, cfg.input_size, pretrained, **kwargs)
    if cfg.init:
        model.load_state_dict(initial_weights(cfg.init))
    return model


def accuracy(model: torch.nn.Module, data: TensorSplit, tta: bool) -> float:
    logits = predict_logits(model, data.x, tta=tta)
    return float((logits.argmax(axis=1) == data.labels.cpu().numpy()).mean())


def _save(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def _prepare_run_dir(cfg: TrainConfig, resume: bool) -> Path:
    run_dir = cfg.run_dir
    config_file = run_dir / "config.json"
    if config_file.is_file() and not resume and (run_dir / "last.pt").is_file():
        raise ConfigError(f"run {run_dir} exists; pass --resume or choose another --name")
    run_dir.mkdir(parents=True, exist_ok=True)
    config_file.write_text(cfg.to_json() + "\n")
    return run_dir


def load_data(cfg: TrainConfig, probe: ModelCard) -> tuple[TensorSplit, TensorSplit]:
    """Train and Valid tensors for ``cfg`` (normalized with ``probe``)."""
    root = Path(cfg.data_root)
    train = load_split(cfg.dataset, root, "train", probe, limit=cfg.max_train, crops=cfg.crops)
    valid = load_split(cfg.dataset, root, "valid", probe, limit=cfg.max_eval, crops=cfg.crops)
    if cfg.teacher:
        # Imported here: the teacher pulls in ONNX Runtime, which plain runs do not need.
        from fer_live.trainer.teacher import teacher_probs

        mixed = (1.0 - cfg.teacher_weight) * train.soft + cfg.teacher_weight * torch.from_numpy(
            teacher_probs(cfg, "train")
        )
        train = TensorSplit(train.x, mixed, train.labels, train.classes)
    return train, valid


@dataclass
class _Session:
    """The objects one run updates epoch by epoch."""

    model: FerNet
    optimizer: torch.optim.Optimizer
    ema: ModelEma | None
    gen: torch.Generator
    schedule: dict[str, int]
    best: dict[str, Any]
    next_epoch: int = 1


def _new_session(cfg: TrainConfig, num_classes: int, num_train: int) -> _Session:
    device = torch.device(cfg.device)
    model = build_model(cfg, num_classes).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = ModelEma(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    steps_per_epoch = max(1, num_train // cfg.batch_size)
    schedule = {
        "step": 0,
        "total_steps": steps_per_epoch * cfg.epochs,
        "warmup_steps": int(cfg.warmup_epochs * steps_per_epoch),
    }
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)
    return _Session(model, optimizer, ema, gen, schedule, {"acc": -1.0, "epoch": 0})


def _resume(session: _Session, last_file: Path) -> None:
    ckpt = read_checkpoint(last_file, map_location=session.gen.device)
    session.model.load_state_dict(ckpt["model"])
    session.optimizer.load_state_dict(ckpt["optimizer"])
    if session.ema is not None and ckpt.get("ema") is not None:
        session.ema.module.load_state_dict(ckpt["ema"])
    session.schedule["step"], session.best = ckpt["step"], ckpt["best"]
    session.gen.set_state(ckpt["gen"].to(session.gen.get_state().device))
    session.next_epoch = ckpt["epoch"] + 1
    logger.info("resumed %s at epoch %d", last_file.parent, session.next_epoch)


def run_training(cfg: TrainConfig, resume: bool = False, progress: Any | None = None) -> RunResult:
    """Train ``cfg`` to completion (or continue it from ``last.pt`` when ``resume``).

    Args:
        cfg: Run configuration.
        resume: Continue from ``runs/<name>/last.pt`` if it exists.
        progress: A ``rich.progress.Progress`` to show batches on, or None.

    Returns:
        The run directory and best Valid accuracy.
    """
    run_dir = _prepare_run_dir(cfg, resume)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    train, valid = load_data(cfg, training_card(cfg, ("probe",), 1))
    train, valid = train.to(cfg.device), valid.to(cfg.device)
    session = _new_session(cfg, len(train.classes), len(train))
    card = training_card(cfg, train.classes, session.model.num_features)
    if resume and (run_dir / "last.pt").is_file():
        _resume(session, run_dir / "last.pt")
    logger.info(
        "train %d / valid %d images, %s on %s", len(train), len(valid), cfg.arch, cfg.device
    )
    for epoch in range(session.next_epoch, cfg.epochs + 1):
        record = _run_epoch(cfg, session, train, valid, epoch, progress)
        _keep_best(cfg, session, record, card, run_dir)
        _append_log(run_dir, record)
        _save_last(cfg, session, epoch, run_dir / "last.pt")
    return RunResult(run_dir, session.best["acc"], session.best["epoch"], cfg.epochs)


def _run_epoch(
    cfg: TrainConfig,
    session: _Session,
    train: TensorSplit,
    valid: TensorSplit,
    epoch: int,
    progress: Any | None,
) -> dict[str, Any]:
    """Train one epoch, evaluate on Valid and return the epoch's log record."""
    task = progress.add_task(f"epoch {epoch}/{cfg.epochs}", total=len(train)) if progress else None
    handle = _ProgressHandle(progress, task) if progress is not None else None
    stats = train_one_epoch(
        session.model, session.optimizer, train, cfg, session.schedule, session.gen, session.ema,
        handle,
    )  # fmt: skip
    if progress is not None:
        progress.remove_task(task)
    record = _evaluate_epoch(session.model, session.ema, valid, cfg)
    record.update(epoch=epoch, loss=round(stats.loss, 5), img_per_s=round(stats.images_per_s, 1))
    record.update(train_s=round(stats.seconds, 1), lr=session.optimizer.param_groups[0]["lr"])
    return record


def _keep_best(
    cfg: TrainConfig, session: _Session, record: dict[str, Any], card: ModelCard, run_dir: Path
) -> None:
    """Save ``best.pt`` when the raw or EMA weights beat the best Valid accuracy so far."""
    use_ema = session.ema is not None and record["valid_acc_ema"] > record["valid_acc"]
    acc = record["valid_acc_ema"] if use_ema else record["valid_acc"]
    if acc > session.best["acc"]:
        session.best = {"acc": acc, "epoch": record["epoch"], "which": "ema" if use_ema else "raw"}
        source = session.ema.module if use_ema and session.ema is not None else session.model
        payload = {
            "model": source.state_dict(), "card": card.to_json(), "epoch": record["epoch"],
            "valid_acc": acc, "config": cfg.to_json(),
        }  # fmt: skip
        _save(run_dir / "best.pt", payload)
    record["best_valid_acc"] = session.best["acc"]


def _save_last(cfg: TrainConfig, session: _Session, epoch: int, path: Path) -> None:
    """Save everything ``--resume`` needs."""
    payload = {
        "model": session.model.state_dict(),
        "optimizer": session.optimizer.state_dict(),
        "ema": session.ema.module.state_dict() if session.ema is not None else None,
        "step": session.schedule["step"],
        "best": session.best,
        "epoch": epoch,
        "gen": session.gen.get_state(),
        "config": cfg.to_json(),
    }
    _save(path, payload)


class _ProgressHandle:
    """Adapts a rich Progress task to the ``advance(n)`` calls of ``train_one_epoch``."""

    def __init__(self, progress: Any, task: Any):
        self.progress, self.task = progress, task

    def advance(self, n: int) -> None:
        self.progress.advance(self.task, n)


def _evaluate_epoch(
    model: torch.nn.Module, ema: ModelEma | None, valid: TensorSplit, cfg: TrainConfig
) -> dict[str, Any]:
    record: dict[str, Any] = {"valid_acc": round(accuracy(model, valid, cfg.eval_tta), 5)}
    if ema is not None:
        record["valid_acc_ema"] = round(accuracy(ema.module, valid, cfg.eval_tta), 5)
    return record


def _append_log(run_dir: Path, record: dict[str, Any]) -> None:
    line = json.dumps(record, sort_keys=True)
    with open(run_dir / "log.jsonl", "a") as handle:
        handle.write(line + "\n")
    logger.info("%s", line)
