"""Where the project's real data lives, and what a test that reads it does without it.

The clips, photos and FERPlus images are not in the repository: they are in ``../shared``
beside it (``FER_SHARED`` names another folder). A test that reads them is marked ``shared``
(``tests/conftest.py`` marks every test that uses the ``shared_dir`` fixture). Without the data
it skips, saying what it needs; with ``FER_REQUIRE_SHARED=1`` (``.ci/run`` sets it) it fails
instead, so a machine that lost the data cannot pass by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FER_SHARED") or REPO_ROOT.parent / "shared")
REQUIRE_SHARED = os.environ.get("FER_REQUIRE_SHARED") == "1"


def missing(what: str) -> NoReturn:
    """Skip the running test, or fail it when ``FER_REQUIRE_SHARED=1``."""
    reason = f"needs {what} (the project's real data: set FER_SHARED to its folder)"
    if REQUIRE_SHARED:
        pytest.fail(f"{reason}; FER_REQUIRE_SHARED=1 refuses to skip it", pytrace=False)
    pytest.skip(reason)


def need(path: Path, what: str) -> Path:
    """``path`` when it exists, else ``missing`` (skip or fail) naming ``what`` and the path."""
    if not path.exists():
        missing(f"{what} at {path}")
    return path
