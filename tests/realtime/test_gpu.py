"""GPU backends on a real GPU: CUDA torch (fp16 CUDA graphs) and TensorRT, against CPU runtimes.

Every test here needs a CUDA GPU and is skipped without one; the TensorRT tests also need a
TensorRT library whose engines run on this GPU (TensorRT-RTX refuses compute capability 9.0,
the H100/H200), and are skipped with the probe's reason otherwise.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from fer_live.infer.card import ModelCard
from fer_live.types import CUDA as CUDA_DEVICE

pytestmark = pytest.mark.gpu

HAS_TORCH = importlib.util.find_spec("torch") is not None


def _cuda_available() -> bool:
    if not HAS_TORCH:
        return False
    import torch

    return bool(torch.cuda.is_available())


CUDA = _cuda_available()
needs_cuda = pytest.mark.skipif(
    not CUDA, reason="needs a CUDA GPU (torch is missing or torch.cuda.is_available() is False)"
)
BATCHES = (1, 3, 8, 64, 100)  # 3 pads to 4; 100 runs as 64 + 36 (padded to 64)


@pytest.fixture
def trt_ready() -> None:
    """Skip unless an engine built by the installed TensorRT runs on this GPU."""
    from fer_live.infer.backends.trt import runs_here

    ok, why = runs_here("cuda")
    if not ok:
        pytest.skip(f"TensorRT engines do not run here: {why}")


def _pixels(batch: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(batch).normal(size=(batch, 1, size, size)).astype(np.float32)


def _save_torchscript(path: Path, card: ModelCard) -> Path:
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(card.channels, 8, 3, padding=1)
            self.fc = nn.Linear(8, card.num_classes)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            emb = torch.relu(self.conv(x)).mean(dim=(2, 3))
            return self.fc(emb), emb

    torch.manual_seed(0)
    torch.jit.script(Tiny().eval()).save(str(path), _extra_files={"card.json": card.to_json()})
    return path


@needs_cuda
@pytest.mark.parametrize("graphs", [True, False])
def test_cuda_backend_matches_cpu_torch(tmp_path: Path, tiny_model_card, graphs: bool) -> None:
    from fer_live.infer.backends import CudaTorchBackend, TorchBackend

    path = _save_torchscript(tmp_path / "tiny.pt", tiny_model_card)
    with TorchBackend(path) as cpu, CudaTorchBackend(path, graphs=graphs) as gpu:
        assert gpu.card == tiny_model_card
        for batch in BATCHES:
            pixels = _pixels(batch)
            want, got = cpu.infer(pixels), gpu.infer(pixels)
            assert got.logits.shape == want.logits.shape == (batch, 8)
            np.testing.assert_allclose(got.logits, want.logits, atol=2e-2, rtol=2e-2)
            np.testing.assert_allclose(got.embedding, want.embedding, atol=2e-2, rtol=2e-2)


@needs_cuda
def test_cuda_backend_fp32_graphs_are_exact_enough(tmp_path: Path, tiny_model_card) -> None:
    from fer_live.infer.backends import CudaTorchBackend, TorchBackend

    path = _save_torchscript(tmp_path / "tiny.pt", tiny_model_card)
    with TorchBackend(path) as cpu, CudaTorchBackend(path, half=False, sizes=(2, 8)) as gpu:
        pixels = _pixels(11)  # 8 + 3 (padded to 8)
        np.testing.assert_allclose(gpu.infer(pixels).logits, cpu.infer(pixels).logits, atol=1e-3)


@needs_cuda
def test_auto_on_cuda_picks_a_gpu_backend(tmp_path: Path, build_tiny_model, tiny_model_card):
    from fer_live.infer.backends import open_backend

    model = build_tiny_model(tmp_path / "tiny.onnx")
    _save_torchscript(tmp_path / "tiny.pt", tiny_model_card)
    with open_backend(model, device=CUDA_DEVICE) as backend:
        assert backend.name in ("tensorrt", "cuda") and backend.device.startswith("cuda")
        assert backend.infer(_pixels(4)).logits.shape == (4, 8)


@needs_cuda
@pytest.mark.parametrize(("precision", "atol"), [("fp32", 1e-3), ("fp16", 3e-2)])
def test_tensorrt_matches_onnxruntime(
    trt_ready, tmp_path: Path, tiny_model_path: Path, precision: str, atol: float
) -> None:
    from fer_live.infer.backends import OnnxBackend, TensorRTBackend
    from fer_live.infer.engine.compile import compile_engine

    result = compile_engine(tiny_model_path, precision, (1, 8, 64), cache_dir=tmp_path)
    assert (
        result.built
        and not compile_engine(tiny_model_path, precision, (1, 8, 64), cache_dir=tmp_path).built
    )
    with OnnxBackend(tiny_model_path) as ref, TensorRTBackend(result.path) as engine:
        for batch in BATCHES:
            pixels = _pixels(batch)
            want, got = ref.infer(pixels), engine.infer(pixels)
            np.testing.assert_allclose(got.logits, want.logits, atol=atol, rtol=atol)
            np.testing.assert_allclose(got.embedding, want.embedding, atol=atol, rtol=atol)


@needs_cuda
def test_tensorrt_backend_compiles_onnx_through_the_cache(
    trt_ready, tmp_path: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fer_live.infer.backends import TensorRTBackend

    monkeypatch.setenv("FER_LIVE_CACHE", str(tmp_path))
    with TensorRTBackend(tiny_model_path) as engine:
        assert engine.path.parent == tmp_path and engine.path.suffix == ".engine"
        assert engine.infer(_pixels(2)).logits.shape == (2, 8)
