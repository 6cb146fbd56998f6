"""Fixtures shared by every test: where the real data lives, markers and options."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    override = os.environ.get("FER_SHARED")
    return Path(override) if override else REPO_ROOT.parent / "shared"


SHARED = _shared_dir()
VIDEOS = SHARED / "videos"
IMAGES = SHARED / "images"
FERPLUS = SHARED / "data" / "ferplus"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: pass --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"../shared not found at {SHARED}; set FER_SHARED")
    return SHARED
