"""Distil an ensemble of method runs into one plain FerNet, and export method runs to ONNX.

The ``distill`` method trains the runner's plain backbone (no wrapper, so the result exports
with ``fer_live.trainer.export``) on α·T²·KL(teacher_T ‖ student_T) + (1 - α)·L_runner, where the
teacher is the tuned ensemble's probabilities on the TRAIN split. The runner's outputs only cover
Valid/Test, so ``teacher_train_probs`` rebuilds each member from its ``best_method.pt`` and
predicts the train split (flip-TTA, the member's mode), cached under ``.cache/``.
The ``teacher`` option is an ``ensemble.json`` from ``fer-train methods ensemble`` (members and
tuned weights) or an ``.npz`` holding ``probs`` (N, K) and ``labels`` (N,).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fer_live.errors import ConfigError, ModelError
from fer_live.infer.card import ModelCard
from fer_live.trainer.checkpoint_io import read_checkpoint
from fer_live.trainer.config import AugConfig, TrainConfig
from fer_live.trainer.data.tensors import load_split
from fer_live.trainer.methods.mixed_loss import make_loss
from fer_live.trainer.methods.protocol import Batch, Method, Targets
from fer_live.trainer.methods.registry import method_class
from fer_live.trainer.methods.runner import MethodConfig, build_start
from fer_live.trainer.models.base import FerNet

logger = logging.getLogger(__name__)

CACHE_DIR = Path(".cache")


def method_config(data: dict[str, Any]) -> MethodConfig:
    """A ``MethodConfig`` from its saved ``asdict`` form (tuples restored)."""
    data = dict(data)
    aug = AugConfig.from_dict(data.pop("aug", None))
    return MethodConfig(**data, aug=aug)


def load_method_run(run_dir: Path) -> tuple[nn.Module, Method, MethodConfig, ModelCard]:
    """Rebuild the best model of a method run (CPU, eval mode) and its method object.

    Raises:
        ModelError: The run has no ``best_method.pt``.
    """
    path = Path(run_dir) / "best_method.pt"
    if not path.is_file():
        raise ModelError(f"{run_dir} has no best_method.pt")
    saved = read_checkpoint(path)
    cfg = method_config(saved["config"])
    card = ModelCard.from_json(saved["card"])
    base, _ = build_start(replace(cfg, device="cpu"), card.num_classes, card.labels)
    method = method_class(cfg.method)(dict(cfg.options), make_loss(cfg.loss), card)
    model = method.wrap(base)
    model.load_state_dict(saved["model"])
    return model.eval(), method, cfg, card


def _cache_key(run_dirs: list[Path], weights: list[float], modes: list[str], n: int) -> str:
    parts = []
    for run_dir in run_dirs:
        stat = (run_dir / "best_method.pt").stat()
        parts.append(f"{run_dir.resolve()}|{stat.st_size}|{stat.st_mtime_ns}")
    text = json.dumps([parts, [round(w, 6) for w in weights], modes, n])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def teacher_train_probs(
    run_dirs: list[Path], weights: list[float] | None = None, modes: list[str | None] | None = None,
    max_train: int = 0, data_root: Path | None = None, cache_dir: Path | None = CACHE_DIR,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The weighted ensemble's probabilities on the first ``max_train`` train images (0 = all).

    Args:
        run_dirs: Method runs (each with ``best_method.pt``).
        weights: Merge weight per run (None = uniform); renormalized.
        modes: Inference mode per run (None entries = the run's primary mode).
        max_train: Number of leading train images, as the runner's ``max_train``.
        data_root: FERPlus root (None = each run's own).
        cache_dir: Where the result is cached (None = no cache).

    Returns:
        probs (N, K) float32 and the train labels (N,) they were computed for.
    """
    from fer_live.trainer.methods.runner import predict_mode, probe_card  # the runner's own scoring

    run_dirs = [Path(r) for r in run_dirs]
    weights = list(weights) if weights is not None else [1.0] * len(run_dirs)
    modes = list(modes) if modes is not None else [None] * len(run_dirs)
    if not run_dirs or len(weights) != len(run_dirs) or len(modes) != len(run_dirs):
        raise ConfigError("teacher needs one weight and one mode per run")
    key = _cache_key(run_dirs, weights, [str(m) for m in modes], max_train)
    cached = cache_dir / f"teacher-{key}.npz" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        data = np.load(cached, allow_pickle=False)
        return data["probs"], data["labels"]
    total, labels = None, None
    for run_dir, weight, mode in zip(run_dirs, weights, modes, strict=True):
        model, method, cfg, card = load_method_run(run_dir)
        root = Path(data_root or cfg.data_root)
        train = load_split("ferplus", root, "train", probe_card(cfg), limit=max_train)
        probs, _ = predict_mode(model, method, train.x, mode or method.eval_modes[0])
        logger.info("teacher member %s: train acc %.4f", run_dir,
                    float((probs.argmax(1) == train.labels.numpy()).mean()))  # fmt: skip
        total = weight * probs if total is None else total + weight * probs
        labels = train.labels.numpy()
    probs = (total / sum(weights)).astype(np.float32)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cached, probs=probs, labels=labels)
    return probs, labels


def read_teacher(path: Path, max_train: int) -> tuple[np.ndarray, np.ndarray]:
    """Teacher train probabilities from an ``ensemble.json`` or a ``probs``/``labels`` .npz."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"distill teacher file not found: {path}")
    if path.suffix == ".npz":
        data = np.load(path, allow_pickle=False)
        return data["probs"], data["labels"]
    record = json.loads(path.read_text())
    members = [m for m in record["members"] if float(m["weight"]) > 0]
    return teacher_train_probs(
        [Path(m["run_dir"]) for m in members], [float(m["weight"]) for m in members],
        [m["mode"] for m in members], max_train,
    )  # fmt: skip


def distill_loss(
    logits: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """T²·KL(teacher_T ‖ student_T), batch mean; teacher_T ∝ teacher^(1/T)."""
    t = teacher.clamp(min=1e-8) ** (1.0 / temperature)
    t = t / t.sum(1, keepdim=True)
    log_student = F.log_softmax(logits.float() / temperature, dim=1)
    return F.kl_div(log_student, t, reduction="batchmean") * temperature**2


@dataclass(frozen=True)
class DistillOptions:
    """``teacher``: ensemble.json or .npz; ``alpha``: weight of the distillation term."""

    teacher: str = ""
    alpha: float = 0.7
    temperature: float = 2.0


class DistillMethod(Method):
    """A plain FerNet student on the ensemble's soft train targets (exportable as is)."""

    name: ClassVar[str] = "distill"
    eval_modes: ClassVar[tuple[str, ...]] = ("H",)
    options_type: ClassVar[type] = DistillOptions

    def __init__(self, options: dict[str, Any], criterion: nn.Module, card: ModelCard) -> None:
        super().__init__(options, criterion, card)
        self.teacher: torch.Tensor | None = None

    def order(self, targets: Targets, gen: torch.Generator) -> torch.Tensor:
        self._load_teacher(targets)
        return super().order(targets, gen)

    def loss(self, model: nn.Module, batch: Batch, targets: Targets) -> torch.Tensor:
        teacher = self._load_teacher(targets)[batch.index]
        logits, _ = model(batch.x)
        soft = distill_loss(logits, teacher, self.options.temperature)
        alpha = self.options.alpha
        return alpha * soft + (1.0 - alpha) * self.criterion(logits, batch.soft)

    def _load_teacher(self, targets: Targets) -> torch.Tensor:
        if self.teacher is None:
            if not self.options.teacher:
                raise ConfigError("distill needs --opt teacher=<ensemble.json or .npz>")
            n = len(targets.labels)
            probs, labels = read_teacher(Path(self.options.teacher), n)
            clean = targets.clean.cpu().numpy()
            if len(probs) < n or not np.array_equal(labels[:n], clean):
                raise ConfigError(f"teacher {self.options.teacher} does not cover these {n} "
                                  "train images (another split or max_train)")  # fmt: skip
            self.teacher = torch.from_numpy(probs[:n]).to(targets.soft)
        return self.teacher

    def summary(self) -> dict[str, Any]:
        return {"teacher": self.options.teacher}


def _train_config(card: ModelCard, cfg: MethodConfig, name: str) -> TrainConfig:
    """The fer-train config that rebuilds the run's plain backbone."""
    saved = card.training.get("config") if isinstance(card.training, dict) else None
    if saved is None and cfg.init != "imagenet":
        saved = json.loads(read_checkpoint(cfg.init)["config"])
    if saved is None:
        saved = asdict(TrainConfig(arch=cfg.arch, input_size=cfg.input_size,
                                   channels=cfg.channels))  # fmt: skip
    tcfg = TrainConfig.from_dict(saved)
    return replace(tcfg, name=name, pretrained=None, init=None)


def export_method_run(run_dir: Path, out: Path, crop_framing: Path | None = None) -> Any:
    """Export a plain-backbone method run (``distill``) to ONNX via ``fer_live.trainer.export``.

    Writes ``<run_dir>/fer_train_best.pt`` (a fer-train checkpoint), reloads it with
    ``load_checkpoint`` and calls ``export_onnx`` with the crop framing and the run's Valid/Test
    accuracies in the card.

    Returns:
        The ``ExportReport``.

    Raises:
        ModelError: The method wraps the backbone (ARM, DFT, GUS, ...), so the model is no
            plain FerNet and fer-train's exporter cannot load it.
    """
    from fer_live.trainer.evaluate import load_checkpoint
    from fer_live.trainer.export import export_onnx, load_crop_framing

    run_dir = Path(run_dir)
    model, _, cfg, card = load_method_run(run_dir)
    if not isinstance(model, FerNet):
        raise ModelError(f"{cfg.method} wraps the backbone ({type(model).__name__}); "
                         "only plain-FerNet runs export through "
                         "fer_live.trainer.export")  # fmt: skip
    tcfg = _train_config(card, cfg, run_dir.name)
    result_file = run_dir / "result.json"
    metrics = dict(card.metrics)
    if result_file.is_file():
        result = json.loads(result_file.read_text())
        mode = result["primary_mode"]
        metrics.update(ferplus_valid_acc=round(result["valid"][mode], 4),
                       ferplus_test_acc=round(result["test"][mode], 4))  # fmt: skip
    training = {**card.training, "method_run": asdict(cfg)}
    card = replace(card, name=run_dir.name, arch=tcfg.arch, metrics=metrics, training=training)
    checkpoint = run_dir / "fer_train_best.pt"
    torch.save({"model": model.state_dict(), "config": tcfg.to_json(), "card": card.to_json()},
               checkpoint)  # fmt: skip
    model, card, _ = load_checkpoint(checkpoint)
    return export_onnx(model, replace(card, crop=load_crop_framing(crop_framing)), Path(out))
