"""Faces read the way the product reads a folder of tight face crops, in process.

Each 48 px face is upscaled (cubic, no border) and run through the product's stages for still
images (``LiveConfig.for_source(still=True)``: detector with its padded and whole-image
fallbacks, tracker, crop, backend). Used to check a decision rule on the product's own path.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from fer_live.config import BackendConfig, LiveConfig
from fer_live.pipeline import open_stages, run
from fer_live.types import Frame


def _frames(faces: np.ndarray, side: int) -> Iterator[Frame]:
    for i, face in enumerate(faces):
        big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
        yield Frame(i, None, cv2.cvtColor(big, cv2.COLOR_GRAY2BGR), f"face{i}")


def still_probs(model: Path, faces: np.ndarray, side: int = 192) -> np.ndarray:
    """Probabilities (N, C) in the card's label order of each face's best-scoring detection.

    Rows of faces where nothing was found are NaN.
    """
    config = LiveConfig(backend=BackendConfig(model=model)).for_source(live=False, still=True)
    with open_stages(config) as stages:
        out = np.full((len(faces), stages.backend.card.num_classes), np.nan, np.float32)
        for result in run(_frames(faces, side), stages):
            if not len(result.predictions):
                continue
            best = int(np.argmax(result.tracks.score))
            tid = int(result.tracks.track_id[best])
            row = list(result.predictions.track_id).index(tid)
            out[result.frame.index] = result.predictions.probs[row]
    return out
