"""Checkpoints are read with torch's restricted unpickler: a crafted pickle never runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

ENTRY = "import sys; from fer_live.trainer.cli import main; sys.exit(main())"


class _Payload:
    """Unpickling this calls ``Path.touch(marker)``: the code a crafted checkpoint would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204 - pickle protocol
        return (Path.touch, (self.marker,))


def test_crafted_checkpoint_is_refused_with_one_line_and_never_runs(tmp_path: Path) -> None:
    # given a checkpoint-shaped pickle carrying code
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"model": _Payload(marker), "config": "{}"}, evil)
    # when fer-train evaluates it, in a fresh process
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, "eval", str(evil)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # then
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = (proc.stderr + proc.stdout).strip().splitlines()
    assert lines[-1].startswith("error: refusing to load") and str(evil) in lines[-1]
    assert not marker.exists()


def test_plain_checkpoint_still_loads(tiny_checkpoint: Path) -> None:
    from fer_live.trainer.checkpoint_io import read_checkpoint

    data = read_checkpoint(tiny_checkpoint)
    assert set(data) == {"model", "config", "card"}
    assert all(isinstance(v, torch.Tensor) for v in data["model"].values())
