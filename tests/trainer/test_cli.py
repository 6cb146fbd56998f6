"""``fer-train``: commands are wired and errors become one line with exit code 2."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fer_live.trainer.cli import main


def _run(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["fer-train", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0)


def test_help_lists_commands(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    assert _run(monkeypatch, "--help") == 0
    out = capsys.readouterr().out
    for command in ("train", "eval", "export", "report"):
        assert command in out


@pytest.mark.shared  # fer-train reads FERPlus (../shared) before it builds the model
def test_unknown_model_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    code = _run(
        monkeypatch, "train", "--arch", "resnet19", "--max-train", "8", "--max-eval", "8",
        "--out-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 2
    assert "unknown model" in capsys.readouterr().err


def test_missing_checkpoint_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert _run(monkeypatch, "eval", str(tmp_path / "none.pt")) == 2
