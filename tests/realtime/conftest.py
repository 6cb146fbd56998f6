"""Fixtures for the realtime stage tests: synthetic boxes, tracks and frames, and factories of
tiny ONNX classifiers (``tests/tiny_model.py``; the ready-made one is ``tiny_model_path`` in
``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from fer_live.infer.card import ModelCard
from fer_live.types import FaceBoxes, Frame, Tracks
from tests.tiny_model import build_tiny_onnx, tiny_card


@pytest.fixture
def make_boxes() -> Callable[..., FaceBoxes]:
    """Factory: ``make_boxes([[x0, y0, x1, y1], ...], scores=None) -> FaceBoxes``."""

    def make(xyxy: Sequence[Sequence[float]], scores: Sequence[float] | None = None) -> FaceBoxes:
        boxes = np.asarray(xyxy, np.float32).reshape(-1, 4)
        score = np.full(len(boxes), 0.9, np.float32) if scores is None else scores
        return FaceBoxes(boxes, np.asarray(score, np.float32))

    return make


@pytest.fixture
def make_tracks() -> Callable[..., Tracks]:
    """Factory: ``make_tracks([[x0, y0, x1, y1], ...], ids) -> Tracks`` (all detected)."""

    def make(xyxy: Sequence[Sequence[float]], ids: Sequence[int]) -> Tracks:
        boxes = np.asarray(xyxy, np.float32).reshape(-1, 4)
        n = len(boxes)
        return Tracks(
            boxes, np.asarray(ids, np.int64), np.full(n, 0.9, np.float32), np.ones(n, bool)
        )

    return make


@pytest.fixture
def make_frame() -> Callable[..., Frame]:
    """Factory: ``make_frame(index, h=120, w=160, seed=0) -> Frame`` with random pixels."""

    def make(index: int = 0, h: int = 120, w: int = 160, seed: int = 0) -> Frame:
        rng = np.random.default_rng(seed + index)
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        return Frame(index=index, t_s=index / 30.0, image=image, source_id="synthetic")

    return make


@pytest.fixture(scope="session")
def build_tiny_model() -> Callable[..., Path]:
    """Factory ``build_tiny_model(path, card=None, **overrides) -> Path`` (see build_tiny_onnx)."""
    return build_tiny_onnx


@pytest.fixture(scope="session")
def make_tiny_card() -> Callable[..., ModelCard]:
    """Factory ``make_tiny_card(channels=1, size=32, labels=FERPLUS_LABELS) -> ModelCard``."""
    return tiny_card
