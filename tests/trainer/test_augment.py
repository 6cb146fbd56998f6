"""Tensor augmentation: shapes, determinism, and the effect of each transform."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fer_live.infer.preprocess import to_model_input
from fer_live.trainer.config import AugConfig
from fer_live.trainer.data.augment import (
    augment,
    random_affine,
    random_blur,
    random_erase,
    random_photometric,
)
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


def test_blur_matches_opencvs_gaussian_on_every_chosen_image(faces: torch.Tensor) -> None:
    import cv2

    # given every image blurred with one sigma: 0.03 of the 48 px side
    cfg = AugConfig(**{**NONE.__dict__, "blur_prob": 1.0, "blur_sigma": (0.03, 0.03)})
    out = random_blur(faces, cfg, _gen())
    # then each equals OpenCV's Gaussian with that sigma, kernel of 3 sigma, edges replicated
    sigma, size = 0.03 * 48, 2 * 5 + 1
    for got, face in zip(out, faces, strict=True):
        want = cv2.GaussianBlur(
            face[0].numpy(), (size, size), sigma, borderType=cv2.BORDER_REPLICATE
        )
        np.testing.assert_allclose(got[0].numpy(), want, atol=1e-4)


def test_blur_touches_only_the_chosen_share_and_keeps_the_mean(faces: torch.Tensor) -> None:
    cfg = AugConfig(**{**NONE.__dict__, "blur_prob": 0.5, "blur_sigma": (0.02, 0.04)})
    out = random_blur(faces, cfg, _gen(3))
    changed = (out - faces).abs().amax(dim=(1, 2, 3)) > 1e-5
    assert 0 < int(changed.sum()) < len(faces)
    torch.testing.assert_close(out[~changed], faces[~changed])
    # blur spreads light, it does not add or remove it (edges replicated: nearly exact)
    torch.testing.assert_close(
        out.mean(dim=(1, 2, 3)), faces.mean(dim=(1, 2, 3)), atol=0.02, rtol=0
    )
    sharp = (faces[:, :, :, 1:] - faces[:, :, :, :-1]).abs().mean(dim=(1, 2, 3))
    soft = (out[:, :, :, 1:] - out[:, :, :, :-1]).abs().mean(dim=(1, 2, 3))
    assert (soft[changed] < 0.8 * sharp[changed]).all()


def test_blur_off_draws_nothing_so_older_recipes_rerun_the_same(faces: torch.Tensor) -> None:
    gen = _gen(7)
    before = gen.get_state()
    assert random_blur(faces, AugConfig(), gen) is faces
    assert torch.equal(gen.get_state(), before)


@pytest.mark.parametrize(
    "aug", [{"blur_prob": 1.5}, {"blur_sigma": [0.0, 0.02]}, {"blur_sigma": [0.05, 0.02]}]
)
def test_blur_settings_out_of_range_are_refused(aug: dict) -> None:
    from fer_live.errors import ConfigError

    with pytest.raises(ConfigError, match="aug.blur"):
        AugConfig.from_dict(aug)


def test_aug_from_dict_restores_tuples_from_a_saved_config() -> None:
    from dataclasses import asdict

    cfg = AugConfig(blur_prob=0.3, blur_sigma=(0.01, 0.03), scale=(0.8, 1.2))
    assert AugConfig.from_dict(json.loads(json.dumps(asdict(cfg)))) == cfg
