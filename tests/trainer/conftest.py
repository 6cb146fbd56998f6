"""Fixtures for the trainer tests: the real FERPlus folder and a tiny grayscale model card."""

from __future__ import annotations

from pathlib import Path

import pytest

from realtime.card import ModelCard

FERPLUS_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ferplus"


@pytest.fixture(scope="session")
def ferplus_root(shared_dir: Path) -> Path:
    root = shared_dir / "data" / "ferplus"
    if not (root / "FER2013Train" / "label.csv").is_file():
        pytest.fail(f"FERPlus not found under {root}")
    return root


@pytest.fixture()
def card32() -> ModelCard:
    return ModelCard(name="t", labels=tuple("abcdefgh"), input_size=32, embedding_dim=8)


@pytest.fixture()
def one_torch_thread():
    """Tiny models run fastest (and never oversubscribe a shared CPU) on one thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
