"""Training faces cut the way the product cuts them.

A model read through the product loses 1.3-1.6 points against the same model read directly: the
product upscales a 48 px face, finds it with the detector and cuts the card's square around the
box, so the crop a model sees at run time is shifted and scaled a little differently for every
face. Training (or fine-tuning) on those very crops teaches the model the product's framing.

Each face goes through the product's own still-image stages (``LiveConfig.for_source(still=True)``)
and the square is cut with ``crop_faces``, the runtime's function. A face the product finds no
face in keeps its plain resize, so no image drops out of a split.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from rich.progress import track

from fer_live.config import BackendConfig, LiveConfig
from fer_live.infer.preprocess import crop_faces
from fer_live.pipeline import open_stages, run
from fer_live.types import Frame

logger = logging.getLogger(__name__)

# The folder check's side: the product reads each FERPlus face upscaled to 192 px.
UPSCALE = 192


def _frames(faces: np.ndarray) -> Iterator[Frame]:
    for i, face in enumerate(faces):
        big = cv2.resize(face, (UPSCALE, UPSCALE), interpolation=cv2.INTER_CUBIC)
        yield Frame(i, None, cv2.cvtColor(big, cv2.COLOR_GRAY2BGR), f"face{i}")


def cut_as_product(faces: np.ndarray, model: Path, side: int) -> tuple[np.ndarray, np.ndarray]:
    """The product's crop of every face, and whether the product found a face in it.

    Args:
        faces: uint8 (N, H, W) grayscale faces.
        model: A model file whose card gives the crop framing (the detector is the card's).
        side: Side of the cut squares.

    Returns:
        uint8 (N, side, side) crops and bool (N,) found.
    """
    config = LiveConfig(backend=BackendConfig(model=model, threads=1))
    config = config.for_source(live=False, still=True)
    crops = (
        np.stack([cv2.resize(f, (side, side), interpolation=cv2.INTER_CUBIC) for f in faces])
        if len(faces)
        else np.zeros((0, side, side), np.uint8)
    )
    found = np.zeros(len(faces), bool)
    with open_stages(config) as stages:
        card = replace(stages.backend.card, input_size=side)
        results = run(_frames(faces), stages)
        for result in track(results, total=len(faces), description="product crops"):
            if not len(result.tracks.xyxy):
                continue
            best = int(np.argmax(result.tracks.score))
            crop = crop_faces(result.frame.image, result.tracks.xyxy[best : best + 1], card)[0]
            crops[result.frame.index] = (
                crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
            )
            found[result.frame.index] = True
    logger.info("product found a face in %d of %d images", int(found.sum()), len(faces))
    return crops, found


def cached_product_crops(
    faces: np.ndarray, model: Path, side: int, cache_dir: Path | None
) -> np.ndarray:
    """``cut_as_product``'s crops, kept on disk: a split takes minutes to cut.

    The key covers the faces' pixels, the side and the model card's crop framing.
    """
    if cache_dir is None:
        return cut_as_product(faces, model, side)[0]
    from fer_live.infer.card import read_sidecar

    card = read_sidecar(model)
    digest = hashlib.sha1(faces.tobytes())
    digest.update(repr((side, UPSCALE, card.crop if card else None)).encode())
    cache_file = Path(cache_dir) / f"product-{digest.hexdigest()[:16]}.npz"
    if cache_file.is_file():
        with np.load(cache_file, allow_pickle=False) as data:
            return np.asarray(data["crops"])
    crops, found = cut_as_product(faces, model, side)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, crops=crops, found=found)
    tmp.replace(cache_file)
    return crops
