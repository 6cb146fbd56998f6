"""Whole splits as model-ready tensors, built through the shared ``to_model_input``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fer_live.errors import ConfigError
from fer_live.infer.assets import default_model_path
from fer_live.infer.card import ModelCard
from fer_live.infer.preprocess import resized_faces, to_model_input
from fer_live.trainer.config import CROPS
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


def split_images(
    dataset: str,
    data_root: Path,
    split: str,
    side: int,
    limit: int = 0,
    cache_dir: Path | None = DEFAULT_CACHE_DIR,
    crops: str = "dataset",
) -> PackedImages:
    """One split's uint8 faces, cut as ``crops`` says, in a fixed order.

    Args:
        dataset: ``ferplus``, ``fer2013`` or an image-folder path.
        data_root: FERPlus root.
        split: Split name.
        side: The reading model's input size (product crops are cut at it).
        limit: Keep only the first ``limit`` images (0 = all).
        cache_dir: Packed-image cache folder, or None.
        crops: ``dataset`` (the images as stored), ``product`` (each image as the product cuts
            it: upscaled, detected, framed by the shipped default's card) or ``both`` (the
            stored images, then the product crops of the same images, at ``side``).

    Raises:
        ConfigError: An unknown ``crops``.
    """
    if crops not in CROPS:
        raise ConfigError(f"crops must be one of {', '.join(CROPS)}, got {crops!r}")
    items = read_items(dataset, Path(data_root), split)
    if limit:
        keep = slice(0, limit)
        soft = items.soft[keep] if items.soft is not None else None
        items = LabelledImages(items.paths[keep], items.labels[keep], soft, items.classes)
    size = None if dataset in ("ferplus", "fer2013") else side
    packed = pack(items, size=size, cache_dir=cache_dir)
    if crops == "dataset":
        return packed
    framing_model = default_model_path("onnx")
    cut = cached_product_crops(packed.images, framing_model, side, cache_dir)
    if crops == "product":
        return PackedImages(cut, packed.labels, packed.soft, packed.classes)
    # Both views in one array needs one size: the stored faces are resized as
    # ``to_model_input`` would resize them, so their pixels match the ``dataset`` view's.
    stored = resized_faces(packed.images, side)
    soft = None if packed.soft is None else np.concatenate([packed.soft, packed.soft])
    labels = np.concatenate([packed.labels, packed.labels])
    return PackedImages(np.concatenate([stored, cut]), labels, soft, packed.classes)


def load_split(
    dataset: str,
    data_root: Path,
    split: str,
    card: ModelCard,
    limit: int = 0,
    cache_dir: Path | None = DEFAULT_CACHE_DIR,
    crops: str = "dataset",
) -> TensorSplit:
    """Read, decode (cached) and normalize one split (``split_images`` at the card's size).

    Raises:
        ConfigError: An unknown ``crops``.

    Returns:
        The split as tensors on the CPU.
    """
    packed = split_images(dataset, data_root, split, card.input_size, limit, cache_dir, crops)
    return to_tensors(packed, card)
