"""The backend table: one entry and one class make a backend, and ``--device`` parsing."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np
import pytest

from fer_live.commands.app import build_config
from fer_live.errors import ConfigError
from fer_live.infer.backends import available_backends, open_backend
from fer_live.infer.backends import table as backend_table
from fer_live.infer.backends.base import InferenceBackend
from fer_live.infer.backends.select import candidate_backends, choose_backend, resolve_device
from fer_live.infer.backends.table import BackendEntry, backend_help
from fer_live.infer.card import ModelCard
from fer_live.types import CPU, Device, ModelOutput, parse_device

LABELS = ("calm", "glad")


class EchoBackend(InferenceBackend):
    """A dummy backend for ``.echo`` files: logits are each row's first two pixels."""

    name = "echo"

    def __init__(self, path: Path, device: Device = CPU, threads: int | None = None):
        self.path = Path(path)
        self.device = str(device)
        self.card = ModelCard(name="echo", labels=LABELS, input_size=16, outputs=("logits",))

    def _infer_impl(self, pixels: np.ndarray) -> ModelOutput:
        return ModelOutput(pixels.reshape(len(pixels), -1)[:, :2].copy())


@pytest.fixture
def echo_registered(monkeypatch: pytest.MonkeyPatch) -> BackendEntry:
    # given: the one table entry that adds the backend
    entry = BackendEntry(
        "echo", EchoBackend, (".echo",), rank=2, needs_gpu=False, describe=lambda: "echo 1.0"
    )
    monkeypatch.setitem(backend_table.BACKENDS, "echo", entry)
    return entry


def test_a_table_entry_and_a_class_make_a_backend(
    echo_registered: BackendEntry, tmp_path: Path
) -> None:
    model = tmp_path / "m.echo"
    model.write_bytes(b"")
    pixels = np.arange(2 * 256, dtype=np.float32).reshape(2, 1, 16, 16)
    # when / then: open_backend by name and by auto (the suffix picks it)
    for requested in ("echo", "auto"):
        with open_backend(model, requested) as backend:
            assert isinstance(backend, EchoBackend) and backend.device == "cpu"
            np.testing.assert_array_equal(backend.infer(pixels).logits, [[0, 1], [256, 257]])
    # the auto rules and the CLI's --backend validation and help know it
    assert choose_backend({}, "auto", ".ECHO") == "echo"
    assert resolve_device("echo", parse_device("auto")) == CPU
    assert build_config(source="clip.mp4", backend="echo").backend.backend == "echo"
    assert "echo" in backend_help()
    assert available_backends()["echo"] == "echo 1.0"


def test_rank_orders_auto_and_gpu_backends_need_a_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    # given: a GPU backend that reads .onnx and ranks above TensorRT
    entry = BackendEntry(
        "fastgpu", EchoBackend, (".onnx",), rank=-1, needs_gpu=True, describe=lambda: ""
    )
    monkeypatch.setitem(backend_table.BACKENDS, "fastgpu", entry)
    available = {"fastgpu": True, "tensorrt": True}
    # when / then
    assert candidate_backends(available, "auto", ".onnx") == ["fastgpu", "tensorrt", "onnx"]
    assert resolve_device("fastgpu", parse_device("cpu")) == parse_device("cuda")


def test_unregistered_backend_is_refused() -> None:
    with pytest.raises(ConfigError, match="--backend must be one of auto, onnx"):
        build_config(source="clip.mp4", backend="echo")


def test_the_table_keeps_todays_auto_order() -> None:
    assert backend_table.preference(".onnx") == ("tensorrt", "cuda", "onnx")
    assert backend_table.preference(".pt") == ("cuda", "torch")
    assert backend_table.preference(".plan") == ("tensorrt",)
    assert backend_table.gpu_backends() == ("tensorrt", "cuda")
    assert backend_table.backend_choices() == ("auto", "onnx", "torch", "tensorrt", "cuda")


@pytest.mark.parametrize(
    ("text", "expected", "raises"),
    [
        ("cpu", Device("cpu"), nullcontext()),
        ("auto", Device("auto"), nullcontext()),
        ("cuda", Device("cuda"), nullcontext()),
        ("cuda:0", Device("cuda", 0), nullcontext()),
        (" cuda:12 ", Device("cuda", 12), nullcontext()),
        ("cuda:x", None, pytest.raises(ConfigError, match="--device must be .* got 'cuda:x'")),
        ("cuda:-1", None, pytest.raises(ConfigError, match="--device")),
        ("cuda:", None, pytest.raises(ConfigError, match="--device")),
        ("cuda:١", None, pytest.raises(ConfigError, match="--device")),  # non-ASCII digit
        ("cpu:0", None, pytest.raises(ConfigError, match="--device")),
        ("", None, pytest.raises(ConfigError, match="--device")),
        ("gpu", None, pytest.raises(ConfigError, match="--device")),
    ],
)
def test_parse_device(
    text: str, expected: Device | None, raises: AbstractContextManager[object]
) -> None:
    with raises:
        device = parse_device(text)
        assert device == expected and parse_device(str(device)) == device


def test_a_malformed_device_fails_where_the_flag_enters() -> None:
    # given / when / then: the run's flags are parsed into a Device once, before anything opens
    with pytest.raises(ConfigError, match="--device must be cpu, cuda, cuda:N"):
        build_config(source="clip.mp4", device="cuda:x")
    assert build_config(source="clip.mp4", device="cuda:1").backend.device == Device("cuda", 1)
