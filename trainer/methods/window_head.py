"""Fine-tune a GUS head on windows of one face's frames, the graphs GUS-T meets at run time.

``fer-train methods gus-head`` trains the head on batches of unrelated still images. GUS-T runs
it over a track's last W frames instead: near-copies of one face, sometimes after an expression
change. Here each Train image becomes ``views`` jittered frames (``fer_live.trainer.data.jitter``,
the temporal benchmark's jitter) through the frozen model; the head is then fine-tuned on windows
of them in ``window`` mode: full and partly filled windows, and windows whose older frames
come from another image (a change of expression). Every node learns its own frame's label.
Selection is on Valid windows; the benchmark then reports Test.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import Progress

from fer_live.detect.models import sha256_file
from fer_live.smooth.gus_head import GusHeadWeights
from fer_live.trainer.data.cache import DEFAULT_CACHE_DIR, pack
from fer_live.trainer.data.jitter import jittered
from fer_live.trainer.data.tensors import read_items
from fer_live.trainer.methods.gus import GusHead, save_gus_head
from fer_live.trainer.methods.train_gus_head import infer_batches

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowConfig:
    """Window fine-tuning settings.

    Attributes:
        window: W, frames per window (the smoother's default).
        views: Jittered frames per image.
        images: Train images used (0 = all); Valid uses ``valid_images``.
        change_p: Share of windows whose older frames show another image.
        short_p: Share of windows holding fewer than W frames (a new track).
        epochs, batch_windows, lr, weight_decay: The optimisation.
        threshold: The smoother's edge threshold, used to score Valid windows.
    """

    window: int = 12
    views: int = 12
    images: int = 10000
    valid_images: int = 2000
    change_p: float = 0.25
    short_p: float = 0.25
    epochs: int = 8
    batch_windows: int = 32
    lr: float = 3e-4
    weight_decay: float = 1e-4
    threshold: float = 0.7
    seed: int = 0


def embed_views(
    model: Path, split: str, count: int, views: int, seed: int, data_root: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (N, V, D) of ``views`` jittered frames of ``count`` images, and labels (N,).

    Cached in ``.cache`` by model hash, split, count, views and seed.
    """
    tag = f"{sha256_file(model)[:12]}-{split}-{count}-{views}-{seed}"
    cache = DEFAULT_CACHE_DIR / f"views-{tag}.npz"
    items = read_items("ferplus", data_root, split)
    packed = pack(items, cache_dir=DEFAULT_CACHE_DIR)
    rng = np.random.default_rng(seed)
    n = len(packed.labels) if count <= 0 else min(count, len(packed.labels))
    keep = np.sort(rng.choice(len(packed.labels), n, replace=False))
    labels = packed.labels[keep].astype(np.int64)
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            return data["embedding"], labels
    chunks = []
    with Progress() as progress:
        task = progress.add_task(f"embed {split} views", total=n)
        for start in range(0, n, 512):
            images = jittered(packed.images[keep[start : start + 512]], views, rng)
            chunks.append(infer_batches(model, images)[1].astype(np.float32))
            progress.advance(task, min(512, n - start))
    embedding = np.concatenate(chunks).reshape(n, views, -1)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, embedding=embedding)
    return embedding, labels


def sample_windows(
    n: int, views: int, cfg: WindowConfig, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` windows as (image, view) rows: images (R,), views (R,), window ids (R,).

    A window lists its frames oldest first; its newest frame is the last row of its id.
    """
    images, picks, groups = [], [], []
    for g in range(count):
        length = cfg.window if rng.random() >= cfg.short_p else int(rng.integers(1, cfg.window))
        owner = np.full(length, rng.integers(n))
        if length > 1 and rng.random() < cfg.change_p:
            owner[: int(rng.integers(1, length))] = rng.integers(n)
        images.append(owner)
        picks.append(rng.choice(views, length, replace=length > views))
        groups.append(np.full(length, g))
    return np.concatenate(images), np.concatenate(picks), np.concatenate(groups)


def window_loss(
    head: GusHead, emb: torch.Tensor, labels: torch.Tensor, rows: tuple
) -> torch.Tensor:
    """Cross-entropy of every node of a batch of windows (``sample_windows`` rows)."""
    images, picks, groups = (torch.from_numpy(a) for a in rows)
    logits = head(emb[images, picks], "window", groups)
    return F.cross_entropy(logits, labels[images])


def newest_accuracy(
    weights: GusHeadWeights, emb: np.ndarray, labels: np.ndarray, rows: tuple
) -> float:
    """Accuracy of each window's newest frame through the runtime graph (numpy reference)."""
    images, picks, groups = rows
    right = []
    for g in np.unique(groups):
        member = groups == g
        feats = emb[images[member], picks[member]]
        unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
        logits = weights.last_logits(unit, weights.project(feats))
        right.append(int(np.argmax(logits)) == labels[images[member][-1]])
    return float(np.mean(right))


def finetune_windows(
    head_file: Path, train: tuple[np.ndarray, np.ndarray], valid: tuple[np.ndarray, np.ndarray],
    cfg: WindowConfig,
) -> tuple[GusHead, dict[str, Any]]:  # fmt: skip
    """Fine-tune the head in ``head_file`` on windows; keep the epoch best on Valid windows."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    start = GusHeadWeights.load(head_file)
    head = head_from_weights(start)
    emb, labels = torch.from_numpy(train[0]), torch.from_numpy(train[1])
    valid_rows = sample_windows(len(valid[1]), cfg.views, cfg, len(valid[1]), rng)
    scored = replace(start, threshold=cfg.threshold)
    history = [newest_accuracy(scored, valid[0], valid[1], valid_rows)]
    best, best_state = history[0], None
    steps = max(1, len(train[1]) // cfg.batch_windows)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps * cfg.epochs)
    with Progress() as progress:
        task = progress.add_task("window fine-tuning", total=steps * cfg.epochs)
        for _ in range(cfg.epochs):
            head.train()
            for _ in range(steps):
                rows = sample_windows(len(train[1]), cfg.views, cfg, cfg.batch_windows, rng)
                loss = window_loss(head, emb, labels, rows)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                progress.advance(task)
            head.eval()
            current = replace(weights_of(head, start), threshold=cfg.threshold)
            history.append(newest_accuracy(current, valid[0], valid[1], valid_rows))
            logger.info("epoch %d: valid newest-frame accuracy %.4f", len(history) - 1, history[-1])
            if history[-1] > best:
                best, best_state = history[-1], {k: v.clone() for k, v in head.state_dict().items()}
    if best_state is not None:
        head.load_state_dict(best_state)
    return head.eval(), {"valid_newest_acc_by_epoch": [round(h, 4) for h in history]}


def head_from_weights(weights: GusHeadWeights) -> GusHead:
    """A torch GusHead holding a head file's weights."""
    d, h = weights.w1.shape
    head = GusHead(
        d, len(weights.fc_b), h, weights.norm, weights.p, eval_threshold=weights.threshold
    )
    with torch.no_grad():
        head.gus1.weight.copy_(torch.from_numpy(weights.w1))
        head.gus2.weight.copy_(torch.from_numpy(weights.w2))
        head.fc.weight.copy_(torch.from_numpy(weights.fc_w))
        head.fc.bias.copy_(torch.from_numpy(weights.fc_b))
    return head


def weights_of(head: GusHead, like: GusHeadWeights) -> GusHeadWeights:
    """The torch head's current weights as runtime head weights (``like``'s settings)."""
    return GusHeadWeights(
        head.gus1.weight.detach().numpy().copy(), head.gus2.weight.detach().numpy().copy(),
        head.fc.weight.detach().numpy().copy(), head.fc.bias.detach().numpy().copy(),
        like.norm, like.p, like.threshold, like.meta,
    )  # fmt: skip


def run_window_head(
    model: Path, head_file: Path, out: Path, data_root: Path, cfg: WindowConfig
) -> dict[str, Any]:
    """Embed jittered Train/Valid frames, fine-tune the head on windows, write ``out``."""
    train = embed_views(model, "train", cfg.images, cfg.views, cfg.seed, data_root)
    valid = embed_views(model, "valid", cfg.valid_images, cfg.views, cfg.seed + 1, data_root)
    head, report = finetune_windows(head_file, train, valid, cfg)
    start = GusHeadWeights.load(head_file)
    written = ("format", "norm", "p", "threshold")  # save_gus_head writes these itself
    meta = {k: v for k, v in start.meta.items() if k not in written}
    meta["window_finetune"] = {"config": asdict(cfg), **report, "from": head_file.name}
    save_gus_head(head, out, meta)
    logger.info("wrote %s: %s", out, report)
    return meta
