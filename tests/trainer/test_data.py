"""Readers against the real FERPlus / FER2013 files, the image-folder reader and the cache."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fer_live.errors import ConfigError
from fer_live.trainer.data.cache import pack
from fer_live.trainer.data.ferplus import (
    FER2013_LABELS,
    FERPLUS_LABELS,
    majority_labels,
    read_fer2013,
    read_ferplus,
    soft_targets,
)
from fer_live.trainer.data.folder import read_image_folder
from fer_live.trainer.data.tensors import load_split


@pytest.mark.parametrize(("split", "count"), [("train", 25045), ("valid", 3191), ("test", 3137)])
def test_ferplus_majority_counts_match_reference(
    ferplus_root: Path, split: str, count: int
) -> None:
    data = read_ferplus(ferplus_root, split)
    assert len(data) == count
    assert data.classes == FERPLUS_LABELS
    assert data.labels.min() >= 0 and data.labels.max() <= 7
    np.testing.assert_allclose(data.soft.sum(axis=1), 1.0, atol=1e-5)
    # The majority label is the most voted emotion in the soft target.
    assert (data.soft.argmax(axis=1) == data.labels).mean() > 0.99
    assert all(p.is_file() for p in data.paths[:20])


# votes: neutral happiness surprise sadness anger disgust fear contempt unknown NF
@pytest.mark.parametrize(
    ("votes", "expected"),
    [
        ([10, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0),
        ([4, 0, 0, 1, 3, 2, 0, 0, 0, 0], -1),  # 4 of 9 kept votes: no majority
        ([6, 0, 1, 1, 0, 0, 0, 0, 2, 0], 0),  # single votes dropped: 6 of 8
        ([0, 0, 0, 0, 0, 0, 0, 0, 6, 4], -1),  # unknown majority
        ([0, 0, 0, 0, 0, 0, 0, 0, 0, 10], -1),  # not a face
        ([0, 0, 0, 0, 0, 0, 0, 3, 0, 0], 7),  # contempt
        ([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], -1),  # only single votes
        ([5, 5, 0, 0, 0, 0, 0, 0, 0, 0], -1),  # tie: not more than half
    ],
)
def test_majority_protocol(votes: list[int], expected: int) -> None:
    assert majority_labels(np.asarray([votes], np.float32))[0] == expected


def test_soft_targets_ignore_unknown_and_nf() -> None:
    soft = soft_targets(np.asarray([[4, 0, 0, 0, 0, 0, 0, 0, 4, 2]], np.float32))
    np.testing.assert_allclose(soft[0], [1, 0, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize(
    ("split", "count"), [("train", 28555), ("public", 3579), ("private", 3572)]
)
def test_fer2013_seven_class_counts(ferplus_root: Path, split: str, count: int) -> None:
    data = read_fer2013(ferplus_root, split)
    assert len(data) == count
    assert data.classes == FER2013_LABELS
    assert set(np.unique(data.labels)) == set(range(7))
    assert data.soft is None
    assert all(p.is_file() for p in data.paths[:20])


def test_unknown_split_is_a_config_error(ferplus_root: Path) -> None:
    with pytest.raises(ConfigError, match="split"):
        read_ferplus(ferplus_root, "training")


def test_image_folder_and_cache_roundtrip(ferplus_root: Path, tmp_path: Path, card32) -> None:
    source = read_ferplus(ferplus_root, "valid")
    for cls in ("happiness", "neutral"):
        (tmp_path / "train" / cls).mkdir(parents=True)
    for i, (path, label) in enumerate(zip(source.paths[:12], source.labels[:12], strict=True)):
        cls = "happiness" if i % 2 else "neutral"
        shutil.copy(path, tmp_path / "train" / cls / f"{label}_{path.name}")
    items = read_image_folder(tmp_path / "train")
    assert items.classes == ("happiness", "neutral") and len(items) == 12
    assert np.bincount(items.labels).tolist() == [6, 6]
    cache = tmp_path / "cache"
    first = pack(items, size=32, cache_dir=cache)
    assert first.images.shape == (12, 32, 32) and first.images.dtype == np.uint8
    assert len(list(cache.glob("*.npz"))) == 1
    np.testing.assert_array_equal(pack(items, size=32, cache_dir=cache).images, first.images)
    tensors = load_split(str(tmp_path), ferplus_root, "train", card32, cache_dir=cache)
    assert tuple(tensors.x.shape) == (12, 1, 32, 32)
    assert float(tensors.x.min()) >= -1.0 and float(tensors.x.max()) <= 1.0
    np.testing.assert_allclose(tensors.soft.sum(dim=1).numpy(), 1.0)


def test_image_folder_missing_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        read_image_folder(tmp_path / "nope")


def test_product_crops_follow_the_detected_face(ferplus_root: Path, tmp_path: Path) -> None:
    """``crops="product"``: each face as the product cuts it, cached, labels kept in order."""
    from fer_live.infer.assets import default_model_path
    from fer_live.infer.card import read_sidecar
    from fer_live.trainer.data.product import cut_as_product

    card = read_sidecar(default_model_path("onnx"))
    assert card is not None
    card = replace(card, input_size=64)
    cache = tmp_path / "cache"
    plain = load_split("ferplus", ferplus_root, "valid", card, limit=6, cache_dir=cache)
    product = load_split(
        "ferplus", ferplus_root, "valid", card, limit=6, cache_dir=cache, crops="product"
    )
    assert product.x.shape == plain.x.shape
    np.testing.assert_array_equal(product.labels.numpy(), plain.labels.numpy())
    # the detector's square is not the stored image's frame: the pixels move
    assert float((product.x - plain.x).abs().mean()) > 0.02
    assert len(list(cache.glob("product-*.npz"))) == 1
    again = load_split(
        "ferplus", ferplus_root, "valid", card, limit=6, cache_dir=cache, crops="product"
    )
    np.testing.assert_array_equal(again.x.numpy(), product.x.numpy())
    # a blank picture has no face: it keeps its plain resize
    blank = np.full((1, 48, 48), 128, np.uint8)
    crops, found = cut_as_product(blank, default_model_path("onnx"), 64)
    assert not found[0] and crops.shape == (1, 64, 64) and int(crops[0].min()) == 128


def test_unknown_crops_is_config_error(ferplus_root: Path, tmp_path: Path, card32) -> None:
    with pytest.raises(ConfigError, match="crops"):
        load_split("ferplus", ferplus_root, "valid", card32, limit=2, cache_dir=tmp_path, crops="x")
