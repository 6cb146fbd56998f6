"""Tensor augmentation: shapes, determinism, and the effect of each transform."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fer_live.infer.preprocess import to_model_input
from fer_live.trainer.config import AugConfig
from fer_live.trainer.data.augment import augment, random_affine, random_erase, random_photometric
from fer_live.trainer.data.cache import decode_gray
from fer_live.trainer.data.ferplus import read_ferplus

NONE = AugConfig(
    flip=0.0, rotate_deg=0.0, scale=(1.0, 1.0), shift=0.0, brightness=0.0, contrast=0.0,
    erase_prob=0.0,
)  # fmt: skip


@pytest.fixture(scope="module")
def faces(ferplus_root: Path) -> torch.Tensor:
    from fer_live.infer.card import ModelCard

    data = read_ferplus(ferplus_root, "test")
    images = np.stack([decode_gray(p) for p in data.paths[:16]])
    card = ModelCard(name="t", labels=("a", "b"), input_size=48, embedding_dim=4)
    return torch.from_numpy(to_model_input(images, card))


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_augment_keeps_shape_dtype_and_is_seeded(faces: torch.Tensor) -> None:
    out = augment(faces, AugConfig(), _gen())
    assert out.shape == faces.shape and out.dtype == faces.dtype
    assert torch.isfinite(out).all()
    assert not torch.equal(out, faces)
    torch.testing.assert_close(out, augment(faces, AugConfig(), _gen()))
    assert float(out.abs().max()) < 3.0  # stays near the normalized [-1, 1] range


def test_identity_config_changes_nothing(faces: torch.Tensor) -> None:
    torch.testing.assert_close(augment(faces, NONE, _gen()), faces, atol=1e-5, rtol=0)


def test_flip_mirrors_every_image(faces: torch.Tensor) -> None:
    cfg = AugConfig(**{**NONE.__dict__, "flip": 1.0})
    out = random_affine(faces, cfg, _gen())
    torch.testing.assert_close(out, torch.flip(faces, dims=[3]), atol=1e-5, rtol=0)


def test_photometric_keeps_order_of_pixels(faces: torch.Tensor) -> None:
    cfg = AugConfig(**{**NONE.__dict__, "brightness": 0.3, "contrast": 0.3})
    out = random_photometric(faces, cfg, _gen())
    a, b = faces[0].flatten(), out[0].flatten()
    assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.999
    assert not torch.allclose(a, b)


def test_erase_zeroes_a_rectangle_in_each_chosen_image(faces: torch.Tensor) -> None:
    cfg = AugConfig(**{**NONE.__dict__, "erase_prob": 1.0, "erase_area": (0.1, 0.1)})
    out = random_erase(faces + 5.0, cfg, _gen())
    zero_fraction = (out == 0).float().mean(dim=(1, 2, 3))
    assert ((zero_fraction > 0.05) & (zero_fraction < 0.2)).all()
