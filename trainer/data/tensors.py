"""Whole splits as model-ready tensors, built through the shared ``to_model_input``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fer_live.errors import ConfigError
from fer_live.infer.assets import default_model_path
from fer_live.infer.card import ModelCard
from fer_live.infer.preprocess import to_model_input
from fer_live.trainer.data.cache import DEFAULT_CACHE_DIR, PackedImages, pack
from fer_live.trainer.data.ferplus import LabelledImages, read_fer2013, read_ferplus
from fer_live.trainer.data.folder import read_image_folder
from fer_live.trainer.data.product import cached_product_crops

# Split names of the training loop (train/valid/test) and FER2013's own usages, to reader splits.
FER2013_SPLIT = {
    "train": "train",
    "valid": "public",
    "test": "private",
    "public": "public",
    "private": "private",
}


@dataclass(frozen=True)
class TensorSplit:
    """One split as tensors.

    Attributes:
        x: float32 (N, C, S, S) normalized model input.
        soft: float32 (N, K) targets (vote distribution, or one-hot).
        labels: int64 (N,) hard labels.
        classes: Class names.
    """

    x: torch.Tensor
    soft: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str) -> TensorSplit:
        return TensorSplit(
            self.x.to(device), self.soft.to(device), self.labels.to(device), self.classes
        )


def read_items(dataset: str, data_root: Path, split: str) -> LabelledImages:
    """Label list for ``dataset`` (``ferplus``, ``fer2013`` or an image-folder path).

    Args:
        dataset: Dataset name or a folder with ``<split>/<class>/`` images.
        data_root: FERPlus root for the named datasets.
        split: ``train``, ``valid`` or ``test`` (FER2013 also ``public``/``private``).

    Raises:
        ConfigError: Unknown dataset or split.
    """
    if dataset == "ferplus":
        return read_ferplus(data_root, split)
    if dataset == "fer2013":
        if split not in FER2013_SPLIT:
            raise ConfigError(
                f"fer2013 split must be one of {sorted(FER2013_SPLIT)}, got {split!r}"
            )
        return read_fer2013(data_root, FER2013_SPLIT[split])
    folder = Path(dataset)
    if not folder.is_dir():
        raise ConfigError(f"dataset must be 'ferplus', 'fer2013' or a folder, got {dataset!r}")
    return read_image_folder(folder / split)


def to_tensors(packed: PackedImages, card: ModelCard, chunk: int = 4096) -> TensorSplit:
    """Normalize packed uint8 images with ``to_model_input`` into a ``TensorSplit``."""
    parts = [
        to_model_input(packed.images[i : i + chunk], card) for i in range(0, len(packed), chunk)
    ]
    side = card.input_size
    x = np.concatenate(parts) if parts else np.zeros((0, card.channels, side, side), np.float32)
    if packed.soft is not None:
        soft = packed.soft.astype(np.float32)
    else:
        soft = np.eye(len(packed.classes), dtype=np.float32)[packed.labels]
    return TensorSplit(
        torch.from_numpy(x), torch.from_numpy(soft), torch.from_numpy(packed.labels), packed.classes
    )


def load_split(
    dataset: str,
    data_root: Path,
    split: str,
    card: ModelCard,
    limit: int = 0,
    cache_dir: Path | None = DEFAULT_CACHE_DIR,
    crops: str = "dataset",
) -> TensorSplit:
    """Read, decode (cached) and normalize one split.

    Args:
        dataset: ``ferplus``, ``fer2013`` or an image-folder path.
        data_root: FERPlus root.
        split: Split name.
        card: Model card giving input size, channels and normalization.
        limit: Keep only the first ``limit`` images (0 = all).
        cache_dir: Packed-image cache folder, or None.
        crops: ``dataset`` (the images as stored) or ``product`` (each image as the product
            cuts it: upscaled, detected, framed by the shipped default's card).

    Raises:
        ConfigError: An unknown ``crops``.

    Returns:
        The split as tensors on the CPU.
    """
    items = read_items(dataset, Path(data_root), split)
    if limit:
        keep = slice(0, limit)
        soft = items.soft[keep] if items.soft is not None else None
        items = LabelledImages(items.paths[keep], items.labels[keep], soft, items.classes)
    size = None if dataset in ("ferplus", "fer2013") else card.input_size
    packed = pack(items, size=size, cache_dir=cache_dir)
    if crops == "product":
        framing_model = default_model_path("onnx")
        images = cached_product_crops(packed.images, framing_model, card.input_size, cache_dir)
        packed = PackedImages(images, packed.labels, packed.soft, packed.classes)
    elif crops != "dataset":
        raise ConfigError(f"crops must be 'dataset' or 'product', got {crops!r}")
    return to_tensors(packed, card)
