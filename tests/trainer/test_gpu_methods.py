"""The GPU machine's method queue (benchmarks/gpu_methods.py) and the flags it relies on."""

from __future__ import annotations

import argparse

import pytest
from typer.testing import CliRunner

from fer_live.trainer.methods.cli import methods_app
from tests.bench_scripts import bench_script


@pytest.fixture(scope="module")
def queue():
    with bench_script("gpu_methods") as module:
        yield module


def _args(**overrides) -> argparse.Namespace:
    values = {"device": "cuda", "threads": 2, "au_cache": "", "extra": ""}
    return argparse.Namespace(**{**values, **overrides})


def _flag(cmd: list[str], flag: str) -> list[str]:
    return [cmd[i + 1] for i, part in enumerate(cmd) if part == flag]


def test_every_row_gets_the_protocol_once_unless_it_sets_its_own(queue) -> None:
    rows = dict(queue.QUEUE)
    plain = queue.command("gpu_baseline_s0", rows["gpu_baseline_s0"], _args())
    assert _flag(plain, "--epochs") == ["18"] and _flag(plain, "--seed") == ["0"]
    seeded = queue.command("gpu_baseline_s2", rows["gpu_baseline_s2"], _args())
    assert _flag(seeded, "--seed") == ["2"]
    resnet = queue.command("gpu_resnet18_112_s0", rows["gpu_resnet18_112_s0"], _args())
    assert _flag(resnet, "--epochs") == ["40"] and _flag(resnet, "--input-size") == ["112"]
    smoke = queue.command("gpu_gus_s0", rows["gpu_gus_s0"], _args(extra="--epochs 1"))
    assert _flag(smoke, "--epochs") == ["1"]
    assert _flag(plain, "--device") == ["cuda"] and _flag(plain, "--name") == ["gpu_baseline_s0"]


def test_only_ulc_rows_get_the_au_cache(queue) -> None:
    args = _args(au_cache="/tmp/au.npz")
    for name, options in queue.QUEUE:
        given = _flag(queue.command(name, options, args), "--opt")
        assert ("au_cache=/tmp/au.npz" in given) == ("ulc" in options), name


def test_queue_names_are_unique_gpu_rows_with_the_baseline_seeds_first(queue) -> None:
    names = [name for name, _ in queue.QUEUE]
    assert len(set(names)) == len(names)
    assert all(name.startswith("gpu_") for name in names)
    assert names[:3] == ["gpu_baseline_s0", "gpu_baseline_s1", "gpu_baseline_s2"]


def test_methods_train_passes_arch_and_input_size(monkeypatch) -> None:
    seen = {}

    def fake_run(cfg, resume=False, progress=None):
        seen["cfg"] = cfg
        return {"valid": {}, "test": {}, "labels": {}}

    monkeypatch.setattr("fer_live.trainer.methods.runner.run_method", fake_run)
    args = ["train", "--name", "r", "--arch", "resnet18", "--input-size", "112", "--seed", "3"]
    result = CliRunner().invoke(methods_app, args)
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert (cfg.arch, cfg.input_size, cfg.seed, cfg.device) == ("resnet18", 112, 3, "cpu")
