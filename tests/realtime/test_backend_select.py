"""``--backend auto`` selection: the pure rules, and ``open_backend`` on this (CPU) machine."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pytest

from fer_live.errors import ConfigError, ModelError
from fer_live.infer import backends
from fer_live.infer.backends import OnnxBackend, auto_choice, open_backend, probe_gpu_backends
from fer_live.infer.backends.select import (
    candidate_backends,
    choose_backend,
    gpu_requested,
    resolve_device,
)
from fer_live.types import AUTO, CPU, parse_device

ALL = {"tensorrt": True, "cuda": True, "onnx": True, "torch": True}
NO_TRT = {"tensorrt": False, "cuda": True}
CPU_ONLY: dict[str, bool] = {"tensorrt": False, "cuda": False}


@pytest.mark.parametrize(
    ("available", "requested", "suffix", "expected", "raises"),
    [
        # CPU-only machine: auto picks by suffix, exactly as before GPU backends existed
        (CPU_ONLY, "auto", ".onnx", "onnx", nullcontext()),
        (CPU_ONLY, "auto", ".pt", "torch", nullcontext()),
        (CPU_ONLY, "auto", ".ts", "torch", nullcontext()),
        ({}, "auto", ".onnx", "onnx", nullcontext()),
        # GPU preference: TensorRT, then CUDA torch, then ONNX Runtime
        (ALL, "auto", ".onnx", "tensorrt", nullcontext()),
        (NO_TRT, "auto", ".onnx", "cuda", nullcontext()),
        (ALL, "auto", ".pt", "cuda", nullcontext()),
        ({"tensorrt": True, "cuda": False}, "auto", ".pt", "torch", nullcontext()),
        (ALL, "auto", ".ONNX", "tensorrt", nullcontext()),
        # engines only run on TensorRT; the backend itself explains a missing library
        (CPU_ONLY, "auto", ".engine", "tensorrt", nullcontext()),
        (ALL, "auto", ".plan", "tensorrt", nullcontext()),
        # an explicit request wins over availability
        (CPU_ONLY, "cuda", ".onnx", "cuda", nullcontext()),
        (ALL, "onnx", ".onnx", "onnx", nullcontext()),
        (ALL, "tensorrt", ".pt", "tensorrt", nullcontext()),
        (ALL, "tflite", ".onnx", None, pytest.raises(ConfigError, match="one of auto, onnx")),
        (ALL, "auto", ".h5", None, pytest.raises(ModelError, match="suffix not one of")),
    ],
)
def test_choose_backend(
    available: dict[str, bool],
    requested: str,
    suffix: str,
    expected: str | None,
    raises: AbstractContextManager[object],
) -> None:
    with raises:
        assert choose_backend(available, requested, suffix) == expected


@pytest.mark.parametrize(
    ("available", "suffix", "expected"),
    [
        (ALL, ".onnx", ["tensorrt", "cuda", "onnx"]),
        (NO_TRT, ".onnx", ["cuda", "onnx"]),
        (CPU_ONLY, ".onnx", ["onnx"]),
        (ALL, ".pt", ["cuda", "torch"]),
        (CPU_ONLY, ".engine", ["tensorrt"]),
    ],
)
def test_candidates_end_with_the_fallback(available, suffix, expected):
    assert candidate_backends(available, "auto", suffix) == expected


@pytest.mark.parametrize(
    ("backend", "device", "expected"),
    [
        ("onnx", "cpu", "cpu"),
        ("onnx", "auto", "cpu"),
        ("onnx", "cuda:1", "cuda:1"),
        ("torch", "auto", "cpu"),
        ("tensorrt", "auto", "cuda"),
        ("tensorrt", "cpu", "cuda"),  # the backend's name already asks for the GPU
        ("cuda", "cuda:1", "cuda:1"),
    ],
)
def test_resolve_device(backend: str, device: str, expected: str) -> None:
    assert resolve_device(backend, parse_device(device)) == parse_device(expected)


@pytest.mark.parametrize(
    ("device", "expected"), [("cpu", False), ("auto", True), ("cuda", True), ("cuda:2", True)]
)
def test_gpu_requested(device: str, expected: bool) -> None:
    assert gpu_requested(parse_device(device)) is expected


def test_cpu_device_never_probes_the_gpu(tiny_model_path: Path) -> None:
    assert probe_gpu_backends(tiny_model_path, CPU) == CPU_ONLY
    assert auto_choice(tiny_model_path, CPU) == ("onnx", "cpu")


def test_auto_device_on_a_cpu_machine_runs_onnx_on_the_cpu(tiny_model_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with open_backend(tiny_model_path, device=AUTO) as model:
        assert isinstance(model, OnnxBackend) and model.device == "cpu"


def test_auto_falls_back_when_a_gpu_backend_cannot_load(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # given: the probe claims TensorRT and CUDA torch run here (on this machine they cannot)
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: the GPU backends would really load")
    monkeypatch.setattr(backends, "probe_gpu_backends", lambda path, device: ALL)
    # when
    with caplog.at_level(logging.WARNING), open_backend(tiny_model_path, device=AUTO) as model:
        # then: each GPU backend failed with a reason and ONNX Runtime took over
        assert isinstance(model, OnnxBackend) and model.device == "cpu"
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "tensorrt backend cannot run" in messages and "cuda backend cannot run" in messages


def test_info_rows_say_what_auto_picks(tiny_model_path: Path) -> None:
    rows = backends.auto_summary(tiny_model_path)
    assert rows["backend auto (--device cpu)"] == "onnx on cpu"
    assert "backend auto (--device cuda)" in rows and rows["engine cache"]
