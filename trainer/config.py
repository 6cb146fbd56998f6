"""Typed training configuration, saved as ``runs/<name>/config.json`` with every run."""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from fer_live.errors import ConfigError

# The ways a split's faces can be cut for training (``TrainConfig.crops``).
CROPS = ("dataset", "product", "both")

# The project's data and pretrained weights sit in ../shared beside a checkout; FER_SHARED moves it.
SHARED_DIR = Path(os.environ.get("FER_SHARED") or Path(__file__).resolve().parents[2] / "shared")
DEFAULT_DATA_ROOT = SHARED_DIR / "data" / "ferplus"
DEFAULT_PRETRAINED = {
    "mobilenetv2": SHARED_DIR / "models" / "mobilenet_v2-b0353104.pth",
    "efficientnet_lite0": SHARED_DIR / "models" / "efficientnet-lite0-57934424.pth",
}


@dataclass(frozen=True)
class AugConfig:
    """Tensor augmentation strengths (applied on normalized (B, C, S, S) batches)."""

    flip: float = 0.5
    rotate_deg: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    shift: float = 0.08
    brightness: float = 0.2
    contrast: float = 0.3
    erase_prob: float = 0.25
    erase_area: tuple[float, float] = (0.02, 0.15)
    # Gaussian blur (camera focus, low resolution); off by default so older recipes rerun as
    # they did. sigma is a share of the image side: 0.03 is 1.5 px on a 48 px face.
    blur_prob: float = 0.0
    blur_sigma: tuple[float, float] = (0.005, 0.04)

    def __post_init__(self) -> None:
        if not 0.0 <= self.blur_prob <= 1.0:
            raise ConfigError(f"aug.blur_prob must be in [0, 1], got {self.blur_prob}")
        low, high = self.blur_sigma
        if not 0.0 < low <= high <= 0.1:
            raise ConfigError(f"aug.blur_sigma must be 0 < low <= high <= 0.1, got {low, high}")

    @staticmethod
    def from_dict(data: dict[str, Any] | None) -> AugConfig:
        """An ``AugConfig`` from a recipe's or a saved config's ``aug`` (lists become tuples).

        Raises:
            ConfigError: An unknown key or a value out of range.
        """
        aug = dict(data or {})
        _check_keys(aug, [f.name for f in fields(AugConfig)], prefix="aug.")
        for key in ("scale", "erase_area", "blur_sigma"):
            if key in aug:
                aug[key] = tuple(aug[key])
        return AugConfig(**aug)


@dataclass(frozen=True)
class RunSettings:
    """What every training run sets: ``TrainConfig`` (fer-train) and ``MethodConfig`` (the method
    runner) both derive from it, so a shared setting is declared and documented once.

    Attributes:
        name: Run name; outputs go to ``out_dir / name``.
        data_root: FERPlus root (``FER2013Train`` ... and ``fer2013_7class.csv``).
        arch: Registry name of the model.
        input_size: Model input side in pixels.
        channels: 1 (grayscale) or 3.
        epochs, batch_size, lr, weight_decay, warmup_epochs: Optimisation (AdamW, cosine with
            linear warm-up, per step).
        seed: Seed for torch and numpy.
        device: ``cpu`` or ``cuda``.
        max_train: Use only the first N training images (0 = all), for smoke runs.
        max_eval: Use only the first N validation images (0 = all).
        out_dir: Parent folder of runs.
        aug: Augmentation strengths.
    """

    name: str = "fer_mobilenetv2_64"
    data_root: str = str(DEFAULT_DATA_ROOT)
    arch: str = "mobilenetv2"
    input_size: int = 64
    channels: int = 1
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    seed: int = 0
    device: str = "cpu"
    max_train: int = 0
    max_eval: int = 0
    out_dir: str = "runs"
    aug: AugConfig = field(default_factory=AugConfig)


@dataclass(frozen=True)
class TrainConfig(RunSettings):
    """Everything one training run depends on: ``RunSettings`` plus the following.

    Attributes:
        dataset: ``ferplus`` (8-class majority, soft votes), ``fer2013`` (7-class) or a path to
            an image folder with ``train``/``valid`` sub-folders of class folders.
        pretrained: Weights file for the model, or None (from scratch).
        init: A fer-train checkpoint whose weights start the run (fine-tuning), or None.
        crops: ``dataset`` trains on the images as stored; ``product`` on each image as the
            product cuts it (upscaled, detected, framed by the card), so the model learns the
            framing it meets at run time (``fer_live.trainer.data.product``); ``both`` on
            the two views of every image (Train and Valid twice as long).
        teacher: An exported ONNX model (any input size, an ensemble too) whose probabilities
            on the same views become part of the Train targets (``fer_live.trainer.teacher``).
        teacher_weight: The teacher's share of the targets; the FERPlus votes keep the rest.
        soft_targets: Train against the FERPlus vote distribution instead of hard labels.
        label_smoothing: Label smoothing for hard-label training.
        min_lr: Floor of the cosine schedule.
        drop_rate: Dropout before the classifier.
        ema_decay: Weight EMA decay per step; 0 disables it.
        eval_tta: Average logits over the horizontal flip at evaluation.
        num_threads: torch CPU threads; 0 leaves torch's default.
        channels_last: Use the channels-last memory format (faster on CPU and CUDA).
        amp: bfloat16 autocast on CUDA, and on CPUs with native bf16 (AVX512-BF16 or AMX).
        model_kwargs: Extra keyword arguments for ``create_model``.
    """

    dataset: str = "ferplus"
    pretrained: str | None = None
    init: str | None = None
    crops: str = "dataset"
    teacher: str | None = None
    teacher_weight: float = 0.5
    soft_targets: bool = True
    label_smoothing: float = 0.0
    min_lr: float = 1e-5
    drop_rate: float = 0.2
    ema_decay: float = 0.0
    eval_tta: bool = True
    num_threads: int = 0
    channels_last: bool = True
    amp: bool = True
    model_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "input_size": 16 <= self.input_size <= 512,
            "channels": self.channels in (1, 3),
            "ema_decay": 0.0 <= self.ema_decay < 1.0,
            "device": self.device in ("cpu", "cuda") or self.device.startswith("cuda:"),
            "crops": self.crops in CROPS,
            "teacher_weight": 0.0 <= self.teacher_weight <= 1.0,
            # The teacher's probabilities are mixed into the soft targets.
            "soft_targets": self.soft_targets or not self.teacher,
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"config {key}={getattr(self, key)!r} is out of range")

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.name

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> TrainConfig:
        """Build a config, rejecting unknown keys with the closest valid one.

        Raises:
            ConfigError: An unknown key or a value out of range.
        """
        data = dict(data)
        _check_keys(data, [f.name for f in fields(TrainConfig)])
        if data.get("pretrained") == "imagenet":
            # A recipe names the shared ImageNet file by alias, so it works from any checkout.
            arch = data.get("arch", TrainConfig.arch)
            if arch not in DEFAULT_PRETRAINED:
                raise ConfigError(f"no ImageNet weights are shipped for arch {arch!r}")
            data["pretrained"] = str(DEFAULT_PRETRAINED[arch])
        aug = AugConfig.from_dict(data.pop("aug", None))
        return TrainConfig(**data, aug=aug)

    @staticmethod
    def load(path: Path) -> TrainConfig:
        return TrainConfig.from_dict(json.loads(Path(path).read_text()))


def _check_keys(data: dict[str, Any], valid: list[str], prefix: str = "") -> None:
    for key in data:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean {prefix}{close[0]}?" if close else ""
            raise ConfigError(f"unknown config key {prefix}{key}{hint}")
