"""Train the GUS head on frozen embeddings of a trained model (the CPU-scale GUS plan).

The backbone is the shipped model, frozen: its ``embedding`` output (= ``forward_features``)
over FERPlus is computed once through the runtime backend, then the two GUS layers and the
classifier are trained on random batches with a random threshold per layer (spec §2.1, §2.3:
still-image data keeps ``random`` batches). The result is written as ``<model stem>.gus.npz`` for
``fer_live.smooth.gus_head``. Reported modes: isolated, batch-256 ordered (transductive) and the
base model's own linear head for comparison.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fer_live.detect.models import sha256_file
from fer_live.infer.card import ModelCard
from fer_live.infer.preprocess import to_model_input
from fer_live.trainer.data.cache import pack
from fer_live.trainer.data.tensors import read_items
from fer_live.trainer.methods.gus import GusHead, save_gus_head
from fer_live.trainer.methods.mixed_loss import make_loss

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Embedded:
    """A split passed through a frozen model.

    Attributes:
        embedding: (N, D) float32.
        logits: (N, C) float32 of the model's own head.
        labels: (N,) int64 majority labels.
        soft: (N, C) float32 vote distributions (one-hot when none).
        classes: Class names.
    """

    embedding: np.ndarray
    logits: np.ndarray
    labels: np.ndarray
    soft: np.ndarray
    classes: tuple[str, ...]


@dataclass(frozen=True)
class HeadConfig:
    """GUS head training settings."""

    hidden: int = 512
    norm: str = "mlgcn"
    loss: str = "ce"
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    drop_rate: float = 0.2
    train_threshold: tuple[float, float] = (0.0, 1.0)
    eval_threshold: float = 0.5
    seed: int = 0


def infer_batches(model_path: Path, images: np.ndarray, batch: int = 256) -> tuple[Any, ...]:
    """Run uint8 face crops (N, S, S) through the runtime backend: (logits, embedding, card)."""
    from fer_live.infer.backends import open_backend

    logits, embeddings = [], []
    with open_backend(model_path) as backend:
        card: ModelCard = backend.card
        for start in range(0, len(images), batch):
            out = backend.infer(to_model_input(images[start : start + batch], card))
            if out.embedding is None:
                raise ValueError(f"{model_path} has no embedding output")
            logits.append(out.logits)
            embeddings.append(out.embedding)
    return np.concatenate(logits), np.concatenate(embeddings), card


def embed_split(
    model_path: Path, data_root: Path, split: str, limit: int = 0, cache: Path | None = None
) -> Embedded:
    """Embed one FERPlus split with the frozen model (cached by model sha256 and split)."""
    items = read_items("ferplus", data_root, split)
    tag = f"{sha256_file(model_path)[:12]}-{split}-{limit}"
    cache_file = cache / f"emb-{tag}.npz" if cache is not None else None
    soft = items.soft if items.soft is not None else np.eye(len(items.classes))[items.labels]
    keep = slice(0, limit or len(items.labels))
    if cache_file is not None and cache_file.is_file():
        with np.load(cache_file, allow_pickle=False) as data:
            logits, embedding = data["logits"], data["embedding"]
    else:
        images = pack(items, cache_dir=Path(__file__).resolve().parents[2] / ".cache").images
        logits, embedding, _ = infer_batches(model_path, images[keep])
        if cache_file is not None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache_file, logits=logits, embedding=embedding)
    return Embedded(
        embedding.astype(np.float32),
        logits.astype(np.float32),
        items.labels[keep].astype(np.int64),
        soft[keep].astype(np.float32),
        items.classes,
    )


def train_head(train: Embedded, cfg: HeadConfig) -> tuple[GusHead, list[float]]:
    """Fit a GusHead on embeddings with random batches; returns it (eval mode) and epoch losses."""
    torch.manual_seed(cfg.seed)
    head = GusHead(
        train.embedding.shape[1], len(train.classes), cfg.hidden, cfg.norm,
        drop_rate=cfg.drop_rate, train_threshold=cfg.train_threshold,
        eval_threshold=cfg.eval_threshold,
    )  # fmt: skip
    loss_fn = make_loss(cfg.loss)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = max(1, len(train.labels) // cfg.batch_size) * cfg.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps)
    x, y = torch.from_numpy(train.embedding), torch.from_numpy(train.soft)
    losses = []
    for epoch in range(cfg.epochs):
        loss_fn.set_epoch(epoch)  # type: ignore[operator]
        head.train()
        order, total = torch.randperm(len(x)), 0.0
        batches = order[: len(order) // cfg.batch_size * cfg.batch_size].view(-1, cfg.batch_size)
        for index in batches if len(batches) else [order]:
            loss = loss_fn(head(x[index], "batch"), y[index])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if len(batches):
                sched.step()
            total += float(loss.detach())
        losses.append(total / max(len(batches), 1))
        logger.info("gus head epoch %d loss %.4f", epoch, losses[-1])
    return head.eval(), losses


@torch.no_grad()
def head_accuracy(head: GusHead, data: Embedded, mode: str, batch: int = 256) -> float:
    """Accuracy in ``isolated`` or ordered ``batch`` mode (batches of ``batch`` in file order)."""
    head.eval()
    x = torch.from_numpy(data.embedding)
    preds = [head(x[i : i + batch], mode).argmax(dim=1).numpy() for i in range(0, len(x), batch)]
    return float((np.concatenate(preds) == data.labels).mean())


def run_gus_head(
    model_path: Path, out: Path, data_root: Path, cfg: HeadConfig, max_train: int = 0
) -> dict[str, Any]:
    """Embed FERPlus, train the head, evaluate it and write ``out`` (.gus.npz).

    Returns:
        The metrics and settings written into the file's metadata.
    """
    cache = Path(__file__).resolve().parents[2] / ".cache"
    train = embed_split(model_path, data_root, "train", max_train, cache)
    test = embed_split(model_path, data_root, "test", 0, cache)
    head, losses = train_head(train, cfg)
    metrics = {
        "base_linear_test_acc": float((test.logits.argmax(1) == test.labels).mean()),
        "gus_isolated_test_acc": head_accuracy(head, test, "isolated"),
        "gus_batch256_test_acc_transductive": head_accuracy(head, test, "batch"),
        "train_loss_first": losses[0],
        "train_loss_last": losses[-1],
    }
    meta = {
        "base_name": model_path.name,
        "base_sha256": sha256_file(model_path),
        "labels": list(train.classes),
        "config": asdict(cfg),
        "train_images": len(train.labels),
        "metrics": {k: round(v, 4) for k, v in metrics.items()},
        "note": "CPU-scale plan: GUS head trained on frozen embeddings of the base model",
    }
    save_gus_head(head, out, meta)
    logger.info("wrote %s: %s", out, meta["metrics"])
    return meta
