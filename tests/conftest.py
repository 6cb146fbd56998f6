"""Fixtures shared by every test folder: where the real data lives (and the ``shared`` marker),
and the tiny ONNX classifier (``tests/tiny_model.py``) the runs classify with.

Every test that uses ``shared_dir`` (directly or through another fixture) is marked ``shared``
at collection; a test that reads ``../shared`` another way says ``@pytest.mark.shared``. Such a
test skips with a reason when the data is missing, and fails instead under
``FER_REQUIRE_SHARED=1`` (``tests/shared_data.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_live.infer.card import ModelCard
from tests.shared_data import REQUIRE_SHARED, SHARED, need
from tests.tiny_model import build_tiny_onnx, tiny_card


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason=f"needs ../shared at {SHARED} (set FER_SHARED to its folder)")
    for item in items:
        if "shared_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.shared)
        # skipped here, at the test's own line; under FER_REQUIRE_SHARED=1 setup fails instead
        if item.get_closest_marker("shared") and not SHARED.is_dir() and not REQUIRE_SHARED:
            item.add_marker(skip)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("shared") is not None:
        need(SHARED, "../shared")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return need(SHARED, "../shared")


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 8-class, 1 x 32 x 32 ONNX classifier with its card embedded and a sidecar."""
    return build_tiny_onnx(tmp_path_factory.mktemp("tiny_model") / "tiny.onnx")


@pytest.fixture(scope="session")
def tiny_model_card() -> ModelCard:
    """The card embedded in ``tiny_model_path``."""
    return tiny_card()
