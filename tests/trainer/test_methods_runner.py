"""The shared method runner: noise protocol, option parsing, and one real end-to-end run."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from fer_live.errors import ConfigError
from fer_live.trainer.methods import runner
from fer_live.trainer.methods.keep import keep_run
from fer_live.trainer.methods.noise import flip_labels, relabel_stats
from fer_live.trainer.methods.protocol import Targets, parse_options
from fer_live.trainer.methods.run_outputs import load_outputs, merged_scores
from fer_live.trainer.methods.runner import MethodConfig, run_method


def test_flip_labels_flips_the_exact_fraction_to_other_classes() -> None:
    labels = torch.arange(1000) % 8
    noisy, flipped = flip_labels(labels, 0.2, 8, seed=3)
    assert int(flipped.sum()) == 200
    assert bool((noisy[flipped] != labels[flipped]).all())
    assert bool((noisy[~flipped] == labels[~flipped]).all())
    again, _ = flip_labels(labels, 0.2, 8, seed=3)
    assert torch.equal(noisy, again)


def test_relabel_stats_counts_repairs_and_breaks() -> None:
    clean = torch.tensor([0, 1, 2, 3])
    given = torch.tensor([1, 1, 2, 3])  # sample 0 was flipped
    targets = Targets(torch.zeros(4, 4), given.clone(), given, clean)
    targets.relabel(torch.tensor([0, 2]), torch.tensor([0, 3]))  # repair 0, break 2
    assert relabel_stats(targets) == {"flipped": 1, "relabeled": 2, "repaired": 1, "broken": 1}
    assert targets.soft[2].tolist() == [0, 0, 0, 1]


@dataclass(frozen=True)
class _Opts:
    k: int = 3
    w: float = 0.5
    on: bool = False
    span: tuple[float, float] = (0.0, 1.0)


def test_parse_options_types_values_and_rejects_unknown_keys() -> None:
    opts = parse_options(_Opts, {"k": "5", "w": "0.25", "on": "true", "span": "0.2,0.4"}, "m")
    assert opts == _Opts(5, 0.25, True, (0.2, 0.4))
    with pytest.raises(ConfigError, match="unknown option"):
        parse_options(_Opts, {"kk": "1"}, "m")
    with pytest.raises(ConfigError, match="not a int"):
        parse_options(_Opts, {"k": "x"}, "m")


def test_run_method_writes_valid_and_test_results(
    tmp_path: Path, tiny_checkpoint: Path, ferplus_root: Path, one_torch_thread: None
) -> None:
    # given a tiny backbone, 96 real FERPlus images with 30% injected noise, 64 to evaluate
    cfg = MethodConfig(
        "tiny", method="mre", init=str(tiny_checkpoint),
        input_size=32, epochs=1, batch_size=32,
        max_train=96, max_eval=64, noise=0.3, out_dir=str(tmp_path),
        data_root=str(ferplus_root), options={"swaps": 1},
    )  # fmt: skip
    # when the run finishes
    result = run_method(cfg)
    # then every MRE mode is scored on Valid and Test, and outputs are saved
    assert set(result["test"]) == {"H", "M", "H+M"}
    assert result["labels"]["flipped"] == round(0.3 * 96)
    saved = json.loads((tmp_path / "tiny" / "result.json").read_text())
    assert saved["test"] == result["test"]
    outputs = np.load(tmp_path / "tiny" / "outputs_test.npz")
    assert outputs["probs_H"].shape == (64, 8)
    assert np.allclose(outputs["probs_H"].sum(1), 1.0, atol=1e-4)
    assert abs(float((outputs["probs_H"].argmax(1) == outputs["labels"]).mean())
               - result["test"]["H"]) < 1e-6  # fmt: skip
    # and the saved outputs rebuild the score; merging a run with itself changes nothing
    out = load_outputs(tmp_path / "tiny", "test", "H+M")
    assert out.embedding.shape[0] == 64
    # and the kept copy (no checkpoint, no embeddings) scores the same
    kept = keep_run(tmp_path / "tiny", tmp_path / "kept")
    assert sorted(p.name for p in kept.iterdir()) == [
        "method_config.json", "methods_log.jsonl", "outputs_test.npz", "outputs_valid.npz",
        "result.json",
    ]  # fmt: skip
    small = load_outputs(kept, "test", "H+M")
    assert np.array_equal(small.probs, out.probs) and small.embedding.shape == (64, 0)
    merged = merged_scores({"a": out, "b": out}, {"a": 0.5, "b": 0.5}, threshold=0.999)
    assert merged["merged"]["acc"] == round(100 * result["test"]["H+M"], 2)
    with pytest.raises(ConfigError, match="no mode"):
        load_outputs(tmp_path / "tiny", "test", "isolated")


@pytest.mark.parametrize(
    ("method", "options"),
    [("ean", {"ifg": "pda"}), ("scl", {"queue": "64", "cuem_start": "1", "hidden": "32"})],
)
def test_a_run_stopped_after_an_epoch_resumes_to_the_same_result(
    tmp_path: Path, tiny_checkpoint: Path, ferplus_root: Path, one_torch_thread: None,
    monkeypatch: pytest.MonkeyPatch, method: str, options: dict[str, str],
) -> None:  # fmt: skip
    # given a stateful method (EAN's adversary and its optimizer; SCL's queue and relabels)
    def config(out: Path) -> MethodConfig:
        return MethodConfig(
            "run", method=method, init=str(tiny_checkpoint), input_size=32, epochs=2,
            batch_size=32, max_train=96, max_eval=64, noise=0.3, out_dir=str(out),
            data_root=str(ferplus_root), options=options,
        )  # fmt: skip

    whole = run_method(config(tmp_path / "whole"))
    # when the same run is killed in its second epoch, then resumed
    real_epoch = runner.train_epoch

    def dies_in_epoch_two(loop, cfg, epoch, tick=None):  # noqa: ANN001, ANN202
        if epoch == 1:
            raise KeyboardInterrupt
        return real_epoch(loop, cfg, epoch, tick)

    monkeypatch.setattr(runner, "train_epoch", dies_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        run_method(config(tmp_path / "split"))
    monkeypatch.setattr(runner, "train_epoch", real_epoch)
    resumed = run_method(config(tmp_path / "split"), resume=True)
    # then it ends where the uninterrupted run ended, and the log has each epoch once
    for key in ("valid", "test", "labels", "best_epoch", "method_summary"):
        assert resumed[key] == whole[key], key
    log = (tmp_path / "split" / "run" / "methods_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in log] == [1, 2]
    a = torch.load(tmp_path / "whole" / "run" / "best_method.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "split" / "run" / "best_method.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_a_run_started_with_other_settings(
    tmp_path: Path, tiny_checkpoint: Path, ferplus_root: Path, one_torch_thread: None
) -> None:
    cfg = MethodConfig(
        "run", init=str(tiny_checkpoint), input_size=32, epochs=1, batch_size=32,
        max_train=64, max_eval=32, out_dir=str(tmp_path), data_root=str(ferplus_root),
    )  # fmt: skip
    run_method(cfg)
    with pytest.raises(ConfigError, match="other settings"):
        run_method(replace(cfg, lr=5e-4), resume=True)
