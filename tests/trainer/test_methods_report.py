"""The full-scale methods report: seed spread of the baseline and the 2-sd rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.bench_scripts import bench_script


@pytest.fixture(scope="module")
def report():
    with bench_script("methods_report") as module:
        yield module


def _kept_run(root: Path, name: str, correct: int, n: int = 100) -> None:
    """A kept run in the format `fer-train methods keep` writes, with `correct` right answers."""
    run = root / name
    run.mkdir(parents=True)
    labels = np.arange(n) % 8
    preds = np.where(np.arange(n) < correct, labels, (labels + 1) % 8)
    probs = np.eye(8, dtype=np.float32)[preds]
    for split in ("valid", "test"):
        modes = {f"probs_{mode}": probs for mode in ("H", "H+M", "isolated", "batch")}
        np.savez_compressed(run / f"outputs_{split}.npz", labels=labels, **modes)
    result = {"primary_mode": "H", "train_s": 3600.0, "train_img_per_s": 120.0, "best_epoch": 9}
    (run / "result.json").write_text(json.dumps(result))


def test_baseline_spread_and_which_rows_help(report, tmp_path: Path) -> None:
    # given three baseline seeds at 80, 81 and 82 % and two methods at 83 and 85 %
    for seed, correct in enumerate((80, 81, 82)):
        _kept_run(tmp_path, f"full_baseline_s{seed}", correct)
    _kept_run(tmp_path, "full_mre_s0", 83)
    _kept_run(tmp_path, "full_ean_s0", 85)
    # when the report collects them
    data = report.collect(tmp_path)
    rows = {row["label"]: row for row in data["rows"]}
    base = rows["baseline (CE)"]
    # then the baseline is mean ± sample sd, and only the method beyond 2 sd helps
    assert base["test_acc"] == {"mean": 81.0, "sd": 1.0}
    assert rows["MRE, high head (H)"]["delta_in_sd"] == 2.0
    assert rows["MRE, high head (H)"]["helps"] is False
    assert rows["EAN (isolated)"]["helps"] is True
    assert rows["GUS (isolated, per image)"]["status"] == "not run"
    text = report.to_markdown(data)
    assert "81.00 ± 1.00" in text and "+4.00 (+4.0 sd) **helps**" in text
    assert "--name full_gus_s0 --method gus" in text
    assert report.plot(data, tmp_path / "m.png").stat().st_size > 0


def test_no_method_helps_without_three_baseline_seeds(report, tmp_path: Path) -> None:
    _kept_run(tmp_path, "full_baseline_s0", 80)
    _kept_run(tmp_path, "full_baseline_s1", 81)
    _kept_run(tmp_path, "full_ean_s0", 95)
    rows = {row["label"]: row for row in report.collect(tmp_path)["rows"]}
    assert rows["EAN (isolated)"]["helps"] is False


def test_ensembles_pair_seed_runs_and_one_run_per_method(report, tmp_path: Path) -> None:
    # given two baseline seeds, a method run, a noisy run and a model file scored as a run
    _kept_run(tmp_path, "full_baseline_s0", 80)
    _kept_run(tmp_path, "full_baseline_s1", 81)
    _kept_run(tmp_path, "full_mre_s0", 83)
    _kept_run(tmp_path, "full_baseline_n20_s0", 60)
    _kept_run(tmp_path, "tier_accurate", 84)
    # when
    seeds, methods, tiers = report.collect(tmp_path)["ensembles"]
    # then: seeds merge the baseline only; the diverse one takes every clean seed-0 run, and
    # the third adds the model file
    assert [m["run"] for m in seeds["members"]] == ["full_baseline_s0", "full_baseline_s1"]
    assert [m["run"] for m in methods["members"]] == ["full_baseline_s0", "full_mre_s0"]
    assert [m["run"] for m in tiers["members"]] == [
        "full_baseline_s0", "full_mre_s0", "tier_accurate"
    ]  # fmt: skip
    assert abs(sum(m["weight"] for m in methods["members"]) - 1.0) < 0.01
    # one-hot members: where they disagree the heavier one wins, so the merge scores as one of them
    assert methods["tuned"]["test_acc"] in (80.0, 83.0)


def test_ensembles_need_two_runs(report, tmp_path: Path) -> None:
    _kept_run(tmp_path, "full_baseline_s0", 80)
    seeds, methods, tiers = report.collect(tmp_path)["ensembles"]
    assert seeds["status"] == methods["status"] == tiers["status"] == "not run"
    assert "not run: needs 2 or more kept runs" in report.to_markdown(report.collect(tmp_path))


def test_gpu_rows_get_their_own_table_against_the_gpu_baseline(report, tmp_path: Path) -> None:
    # given CPU baseline seeds at 80-82 % and GPU runs: baseline seeds at 84-86 %, a method at
    # 85 % and the ResNet-18 row at 90 %
    for seed, correct in enumerate((80, 81, 82)):
        _kept_run(tmp_path, f"full_baseline_s{seed}", correct)
    for seed, correct in enumerate((84, 85, 86)):
        _kept_run(tmp_path, f"gpu_baseline_s{seed}", correct)
    _kept_run(tmp_path, "gpu_mre_s0", 85)
    _kept_run(tmp_path, "gpu_resnet18_112_s0", 90)
    _kept_run(tmp_path, "gpu_baseline_n20_s0", 70)
    # when
    data = report.collect(tmp_path)
    # then the CPU table is untouched and the GPU rows compare with the GPU baseline
    assert data["rows"][0]["test_acc"] == {"mean": 81.0, "sd": 1.0}
    assert data["rows"][1]["status"] == "not run"
    gpu = {row["label"]: row for row in data["gpu"]["rows"]}
    assert gpu["baseline (CE)"]["test_acc"] == {"mean": 85.0, "sd": 1.0}
    assert gpu["MRE, high head (H)"]["delta_test_acc"] == 0.0
    resnet = gpu["baseline, ResNet-18 112 px from scratch, 40 epochs"]
    assert resnet["helps"] is True and "gpu_resnet18_112_s0" in resnet["command"]
    assert "GUS (isolated, per image)" not in gpu  # rows without GPU runs are left out
    assert [row["seeds"][0]["run"] for row in data["gpu"]["noise"]] == ["gpu_baseline_n20_s0"]
    text = report.to_markdown(data)
    assert "## GPU-trained rows" in text and "85.00 ± 1.00" in text


def test_no_gpu_table_without_gpu_runs(report, tmp_path: Path) -> None:
    _kept_run(tmp_path, "full_baseline_s0", 80)
    data = report.collect(tmp_path)
    assert "gpu" not in data and "GPU-trained" not in report.to_markdown(data)
