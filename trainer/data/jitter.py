"""Jittered copies of a face crop: what a webcam's consecutive frames of a still face look like.

Shared by the temporal benchmark (``benchmarks/temporal.py``, its test sequences) and GUS-T's
window training (``fer_live.trainer.methods.window_head``, on Train), so both see the same frames.
"""

from __future__ import annotations

import cv2
import numpy as np


def jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One jittered copy of a gray face crop (S, S): shift/scale +-5%, brightness, noise, blur."""
    side = image.shape[0]
    scale = rng.uniform(0.95, 1.05)
    shift = rng.uniform(-0.05, 0.05, 2) * side
    matrix = cv2.getRotationMatrix2D((side / 2, side / 2), 0.0, scale)
    matrix[:, 2] += shift
    out = cv2.warpAffine(image, matrix, (side, side), borderMode=cv2.BORDER_REPLICATE)
    noise = rng.normal(0, rng.uniform(0, 6), out.shape)
    out = out.astype(np.float32) + rng.uniform(-20, 20) + noise
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.0))
    return np.clip(out, 0, 255).astype(np.uint8)


def jittered(images: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
    """(N * frames, S, S): ``frames`` jittered copies of each image, image-major."""
    return np.stack([jitter(img, rng) for img in images for _ in range(frames)])
