"""Tests that read ../shared skip without it, with a reason, and fail under FER_REQUIRE_SHARED=1
(as in .ci/run), so a machine without the data can neither fail nor quietly pass them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# one test that reads a photo through the shared_dir fixture, one that reads nothing
READS_SHARED = "tests/realtime/test_detect.py::test_obama_box_is_on_the_face"
READS_NOTHING = "tests/realtime/test_detect.py::test_nms_keeps_the_best_of_overlapping_boxes"


def _pytest(tmp_path: Path, require: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FER_SHARED": str(tmp_path / "no_shared")}
    env.pop("FER_REQUIRE_SHARED", None)
    if require:
        env["FER_REQUIRE_SHARED"] = "1"
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"]
    return subprocess.run(
        [*args, READS_SHARED, READS_NOTHING],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize("require", [False, True])
def test_a_test_that_reads_shared_skips_or_fails_without_it(tmp_path: Path, require: bool) -> None:
    # given a ../shared that is not there / when
    proc = _pytest(tmp_path, require)
    # then: skipped with the path it looked for, or (CI) an error; the other test passes
    out = proc.stdout
    if require:
        assert proc.returncode == 1, out
        assert "1 passed, 1 error" in out and "FER_REQUIRE_SHARED=1 refuses to skip it" in out
    else:
        assert proc.returncode == 0, out
        assert "1 passed, 1 skipped" in out and f"needs ../shared at {tmp_path}" in out
