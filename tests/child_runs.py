"""Child runs for the signal tests: default signal handling, and a wait for their records."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any


def _default_signals() -> None:
    # A shell's background job may have SIGINT ignored, and a run under nohup SIGHUP; the child
    # must get the defaults (fer-live rightly keeps a signal its parent ignores ignored).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def start_child(
    argv: list[str], env: dict[str, str] | None = None, stderr: Any = subprocess.PIPE
) -> subprocess.Popen[str]:
    """``argv`` in a child with default SIGINT / SIGHUP handling, stderr captured as text (or
    sent where ``stderr`` says: an open file)."""
    return subprocess.Popen(argv, stderr=stderr, text=True, env=env, preexec_fn=_default_signals)


def wait_for_records(
    path: Path, lines: int, proc: subprocess.Popen[str], timeout_s: float = 90.0
) -> None:
    """Wait until the run's staged records at ``path`` hold ``lines`` lines.

    Raises:
        AssertionError: The child ended, or the timeout passed, before that.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        # records grow under the staged name until the run ends (fer_live.outputs.staged)
        for staged in path.parent.glob(f".{path.stem}.*.part{path.suffix}"):
            if staged.read_text().count("\n") >= lines:
                return
        time.sleep(0.05)
    raise AssertionError(f"the run wrote fewer than {lines} records in {timeout_s} s")
