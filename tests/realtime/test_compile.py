"""Engine compile: cache keys, profiles, padding, the engine file, fp16 ONNX, calibration data.

The builder test runs for real where TensorRT-RTX is installed (it builds ahead of time for a
compute capability without needing a GPU); elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import json
import struct
import sys
import types
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np
import pytest

from fer_live.commands.app import main, with_default_command
from fer_live.errors import BackendUnavailable, ConfigError, ModelError
from fer_live.infer.card import ModelCard, write_sidecar
from fer_live.infer.engine.compile import (
    CACHE_ENV,
    cache_key,
    calibration_batches,
    compile_engine,
    default_cache_dir,
    engine_path,
    image_files,
    parse_batch_sizes,
    profile_for,
)
from fer_live.infer.engine.file import MAGIC, pack_engine, read_engine, unpack_engine, write_engine
from fer_live.infer.engine.onnx_fp16 import to_fp16, unsupported_ops
from fer_live.infer.engine.trt_lib import import_tensorrt
from fer_live.infer.gpu import pad_to_captured, plan_chunks
from fer_live.infer.preprocess import to_model_input
from tests.shared_data import need


def _rtx_installed() -> bool:
    try:
        return import_tensorrt().rtx
    except BackendUnavailable:
        return False


HAS_RTX = _rtx_installed()
KEY_ARGS = ("ab" * 32, "8.9", "tensorrt_rtx 1.7.1.116", "fp16", (1, 32, 64))


# --- profiles, padding, chunks ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("sizes", "expected", "raises"),
    [
        ([1, 8, 32, 64], (1, 32, 64), nullcontext()),
        ([64, 1, 8, 32, 8], (1, 32, 64), nullcontext()),
        ([1], (1, 1, 1), nullcontext()),
        ([1, 2], (1, 2, 2), nullcontext()),
        ([4, 16, 256], (4, 16, 256), nullcontext()),
        ([], None, pytest.raises(ConfigError, match="batch sizes")),
        ([0, 8], None, pytest.raises(ConfigError, match="batch sizes")),
        ([1, 5000], None, pytest.raises(ConfigError, match="batch sizes")),
    ],
)
def test_profile_for(sizes, expected, raises: AbstractContextManager[object]) -> None:
    with raises:
        low, opt, high = profile_for(sizes)
        assert (low, opt, high) == expected and low <= opt <= high


@pytest.mark.parametrize(
    ("text", "expected", "raises"),
    [
        ("1,8,32,64", (1, 8, 32, 64), nullcontext()),
        (" 64, 1 ,8,", (1, 8, 64), nullcontext()),
        ("a,b", None, pytest.raises(ConfigError, match="integers")),
        ("", None, pytest.raises(ConfigError, match="1..4096")),
        ("0,4", None, pytest.raises(ConfigError, match="1..4096")),
    ],
)
def test_parse_batch_sizes(text: str, expected, raises: AbstractContextManager[object]) -> None:
    with raises:
        assert parse_batch_sizes(text) == expected


@pytest.mark.parametrize(
    ("batch", "expected", "raises"),
    [
        (1, 1, nullcontext()),
        (3, 4, nullcontext()),
        (8, 8, nullcontext()),
        (33, 64, nullcontext()),
        (64, 64, nullcontext()),
        (65, None, pytest.raises(ValueError, match="above the largest")),
        (0, None, pytest.raises(ValueError, match=">= 1")),
    ],
)
def test_pad_to_captured(batch: int, expected, raises: AbstractContextManager[object]) -> None:
    with raises:
        assert pad_to_captured(batch, (64, 1, 2, 4, 8, 16, 32)) == expected


@pytest.mark.parametrize("batch", [0, 1, 5, 64, 65, 130, 200])
def test_plan_chunks_cover_the_batch_once_with_captured_sizes(batch: int) -> None:
    sizes = (1, 2, 4, 8, 16, 32, 64)
    chunks = plan_chunks(batch, 64, lambda rows: pad_to_captured(rows, sizes))
    covered = [row for chunk in chunks for row in range(chunk.start, chunk.stop)]
    assert covered == list(range(batch))
    assert all(chunk.padded in sizes and chunk.padded >= chunk.rows for chunk in chunks)
    assert all(chunk.rows <= 64 for chunk in chunks)


def test_plan_chunks_pads_to_a_profile_minimum_and_rejects_shrinking() -> None:
    assert [c.padded for c in plan_chunks(10, 8, lambda rows: max(rows, 4))] == [8, 4]
    with pytest.raises(ValueError, match="fewer rows"):
        plan_chunks(5, 8, lambda rows: rows - 1)


# --- cache keys and folders -------------------------------------------------------------------


def test_cache_key_is_stable_hex() -> None:
    key = cache_key(*KEY_ARGS)
    assert key == cache_key(*KEY_ARGS)
    assert len(key) == 16 and int(key, 16) >= 0


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (0, "cd" * 32),  # changed model
        (1, "12.0"),  # another GPU generation
        (2, "tensorrt 10.13.0"),  # another library or version
        (3, "fp32"),  # another precision
        (4, (1, 8, 64)),  # another profile
    ],
)
def test_every_key_field_changes_the_key(index: int, value: object) -> None:
    args = list(KEY_ARGS)
    args[index] = value
    assert cache_key(*args) != cache_key(*KEY_ARGS)


def test_engine_path_names_model_precision_and_target(tmp_path: Path) -> None:
    path = engine_path(tmp_path, Path("w/fer_default.onnx"), "fp16", "8.9", "0123abcd")
    assert path == tmp_path / "fer_default-fp16-sm89-0123abcd.engine"


def test_cache_dir_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "engines"))
    assert default_cache_dir() == tmp_path / "engines"
    monkeypatch.delenv(CACHE_ENV)
    assert default_cache_dir() == Path.home() / ".cache/fer-live/engines"


# --- the engine file --------------------------------------------------------------------------


def test_engine_file_round_trip(tmp_path: Path, tiny_model_card: ModelCard) -> None:
    # given
    plan = b"vtrt" + bytes(range(256)) * 4
    build = {"precision": "fp16", "profile": [1, 32, 64]}
    # when
    path = write_engine(tmp_path / "m.engine", tiny_model_card, plan, build)
    engine = read_engine(path)
    # then: header, plan bytes and the sidecar card all agree
    assert path.read_bytes().startswith(MAGIC)
    assert engine.card == tiny_model_card and engine.plan == plan and engine.build == build
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["name"] == tiny_model_card.name and sidecar["file"] == "m.engine"


def test_bare_plan_reads_its_sidecar_card(tmp_path: Path, tiny_model_card: ModelCard) -> None:
    path = tmp_path / "bare.plan"
    path.write_bytes(b"vtrt-plan-bytes")
    with pytest.raises(ModelError, match="no fer-live header"):
        read_engine(path)
    write_sidecar(tiny_model_card, path)
    engine = read_engine(path)
    assert engine.card == tiny_model_card and engine.plan == b"vtrt-plan-bytes"
    assert engine.build == {}


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda data: data[:20], "truncated"),
        (lambda data: data[:12], "truncated"),
        (lambda data: MAGIC + struct.pack("<II", 2, 2) + b"{}", "version 2"),
        (lambda data: MAGIC + struct.pack("<II", 1, 3) + b"{x}", "not valid JSON"),
        (lambda data: MAGIC + struct.pack("<II", 1, 2) + b"{}", "no model card"),
    ],
)
def test_broken_headers_are_model_errors(tiny_model_card: ModelCard, mutate, match: str) -> None:
    data = mutate(pack_engine(tiny_model_card, b"plan", {}))
    with pytest.raises(ModelError, match=match):
        unpack_engine(data)


# --- fp16 ONNX --------------------------------------------------------------------------------


def _run_onnx(model, pixels: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, ["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: pixels})


@pytest.mark.parametrize("model_name", ["tiny", "shipped"])
def test_fp16_onnx_keeps_float32_io_and_matches_fp32(model_name, tiny_model_path):
    onnx = pytest.importorskip("onnx")
    path = tiny_model_path
    if model_name == "shipped":
        path = Path(__file__).resolve().parents[2] / "weights/fer_default.onnx"
        if not path.is_file():
            pytest.skip("the shipped model is not installed")
    model = onnx.load(str(path))
    # when
    half = to_fp16(model)
    # then: weights are fp16, inputs/outputs stay float32, predictions agree with fp32
    assert {t.data_type for t in half.graph.initializer} == {onnx.TensorProto.FLOAT16}
    types = [v.type.tensor_type.elem_type for v in [*half.graph.input, *half.graph.output]]
    assert set(types) == {onnx.TensorProto.FLOAT}
    shape = [d.dim_value or 6 for d in model.graph.input[0].type.tensor_type.shape.dim]
    pixels = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    full, reduced = _run_onnx(model, pixels), _run_onnx(half, pixels)
    assert reduced[0].dtype == np.float32
    np.testing.assert_allclose(reduced[0], full[0], atol=0.05, rtol=0.02)
    assert (reduced[0].argmax(1) == full[0].argmax(1)).all()


def test_fp16_rejects_operators_it_does_not_handle(tiny_model_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(tiny_model_path))
    model.graph.node[1].op_type = "Resize"
    assert unsupported_ops(model) == ["Resize"]
    with pytest.raises(ModelError, match="Resize; use --precision fp32"):
        to_fp16(model)


# --- INT8 calibration data --------------------------------------------------------------------


def test_calibration_batches_from_ferplus_images(
    tiny_model_card: ModelCard, shared_dir: Path
) -> None:
    train = need(shared_dir / "data" / "ferplus" / "FER2013Train", "FERPlus")
    # given: 10 real FERPlus faces plus one unreadable file
    images = image_files(train, 10) + [train / "missing.png"]
    # when
    batches = list(calibration_batches(images, tiny_model_card, batch=4))
    # then: two full batches, preprocessed exactly like the runtime does
    assert [b.shape for b in batches] == [(4, 1, 32, 32)] * 2
    import cv2

    first = cv2.imread(str(images[0]), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(batches[0][0], to_model_input(first[None], tiny_model_card)[0])


def test_image_files_validates(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="folder"):
        image_files(tmp_path / "nope", 4)
    with pytest.raises(ConfigError, match="calib-count"):
        image_files(tmp_path, 0)


# --- compile without / with TensorRT ----------------------------------------------------------


def test_compile_without_tensorrt_says_how_to_install(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FER_LIVE_TRT", "no_such_tensorrt_module")
    with pytest.raises(BackendUnavailable, match="pip install tensorrt .* or tensorrt-rtx"):
        compile_engine(tiny_model_path, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="precision"):
        compile_engine(tiny_model_path, precision="bf16", cache_dir=tmp_path)


def test_bindings_only_installs_import_as_their_library(monkeypatch: pytest.MonkeyPatch) -> None:
    # given: only a bindings wheel of each library is importable (module names as the wheels ship)
    full, rtx = types.ModuleType("tensorrt_bindings"), types.ModuleType("tensorrt_rtx_bindings")
    full.__version__, rtx.__version__ = "10.16.1", "1.7.1"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tensorrt_bindings", full)
    monkeypatch.setitem(sys.modules, "tensorrt_rtx_bindings", rtx)
    # when / then: each is the library it belongs to, not the other one
    monkeypatch.setenv("FER_LIVE_TRT", "tensorrt_bindings")
    lib = import_tensorrt()
    assert (lib.module, lib.label, lib.rtx) == (full, "tensorrt 10.16.1", False)
    monkeypatch.setenv("FER_LIVE_TRT", "tensorrt_rtx_bindings")
    lib = import_tensorrt()
    assert (lib.module, lib.label, lib.rtx) == (rtx, "tensorrt_rtx 1.7.1", True)


def test_compile_cli_errors_are_one_line(
    tiny_model_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FER_LIVE_TRT", "no_such_tensorrt_module")
    assert with_default_command(["compile"]) == ["compile"]
    assert main(["compile", str(tiny_model_path), "--cache-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: TensorRT not installed: pip install tensorrt (datacenter GPUs)")
    assert err.count("\n") == 1
    assert main(["compile", str(tiny_model_path), "--batch-sizes", "0"]) == 2


@pytest.mark.skipif(not HAS_RTX, reason="TensorRT-RTX not installed (pip install tensorrt-rtx)")
def test_rtx_builds_ahead_of_time_and_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build_tiny_model, tiny_model_card
) -> None:
    # given: TensorRT-RTX builds for compute capability 8.9 without needing that GPU
    monkeypatch.delenv("FER_LIVE_TRT", raising=False)
    model = build_tiny_model(tmp_path / "tiny.onnx")
    kwargs = {"cache_dir": tmp_path / "cache", "compute_capability": "8.9", "batch_sizes": (1, 64)}
    # when: first run builds, second loads, --force rebuilds
    first = compile_engine(model, **kwargs)
    second = compile_engine(model, **kwargs)
    forced = compile_engine(model, force=True, **kwargs)
    # then
    assert first.built and not second.built and forced.built
    assert first.path == second.path == forced.path
    engine = read_engine(first.path)
    assert engine.card == tiny_model_card and engine.plan[:4] != MAGIC[:4]
    assert engine.build["profile"] == [1, 64, 64] and engine.build["compute_capability"] == "8.9"
    assert {layer["dtype"] for layer in first.layers if layer["type"] == "CONVOLUTION"} == {"HALF"}
    # a changed model gets its own engine
    build_tiny_model(model, seed=1)
    changed = compile_engine(model, **kwargs)
    assert changed.built and changed.key != first.key
    # fp32 keeps float layers
    fp32 = compile_engine(model, precision="fp32", **kwargs)
    assert {layer["dtype"] for layer in fp32.layers if layer["type"] == "CONVOLUTION"} == {"FLOAT"}
