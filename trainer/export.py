"""Export trained models to ONNX and TorchScript with the model card inside and beside them."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from fer_live.errors import ModelError
from fer_live.infer.card import CARD_KEY, CropFraming, ModelCard, read_sidecar, write_sidecar
from fer_live.trainer.models.base import FerNet

logger = logging.getLogger(__name__)

DEFAULT_CROP_FRAMING = (
    Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "crop_framing.json"
)
OPSET = 17


@dataclass(frozen=True)
class ExportReport:
    """What an export produced and how closely the file matches torch."""

    path: Path
    sidecar: Path
    max_abs_logit_diff: float
    latency_ms_b1: float | None


def load_crop_framing(path: Path | None = None) -> CropFraming:
    """Crop framing from ``crop_framing.json`` (keys ``scale``, ``shift_x``, ``shift_y``).

    With no path, the measured file in ``benchmarks/results`` is used when present; otherwise the
    ``CropFraming()`` defaults, with a warning.

    Raises:
        ModelError: An explicit path is missing or malformed.
    """
    if path is None:
        if not DEFAULT_CROP_FRAMING.is_file():
            logger.warning("no %s; using default crop framing", DEFAULT_CROP_FRAMING)
            return CropFraming()
        path = DEFAULT_CROP_FRAMING
    try:
        data = json.loads(Path(path).read_text())
        return CropFraming(
            scale=float(data["scale"]),
            shift_x=float(data["shift_x"]),
            shift_y=float(data["shift_y"]),
        )
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"cannot read crop framing {path}: {exc}") from None


def _example_input(card: ModelCard, batch: int = 2, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    side = card.input_size
    return torch.randn(batch, card.channels, side, side, generator=gen)


def _check_card(model: FerNet, card: ModelCard) -> ModelCard:
    if card.embedding_dim is None or card.outputs != ("logits", "embedding"):
        # a fresh export has no folded GUS head (fer-train fold-gus adds it afterwards)
        card = replace(
            card, outputs=("logits", "embedding"), embedding_dim=model.num_features, gus_head=None
        )
    if card.embedding_dim != model.num_features:
        raise ModelError(f"card embedding_dim {card.embedding_dim} != model {model.num_features}")
    return card


def export_onnx(
    model: FerNet, card: ModelCard, path: Path, check: bool = True, latency_runs: int = 200
) -> ExportReport:
    """Export ``model`` to ONNX with a dynamic batch, the card in metadata and a sidecar JSON.

    Args:
        model: The trained model (exported in eval mode on the CPU in fp32).
        card: Its model card (``embedding_dim`` is filled in when missing).
        path: Output ``.onnx`` file.
        check: Compare ONNX Runtime with torch and time batch-1 inference.
        latency_runs: Timed ONNX Runtime runs at batch 1.

    Returns:
        Paths, the max absolute logit difference and the median batch-1 latency.
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    card = _check_card(model, card)
    model = model.eval().cpu().to(memory_format=torch.contiguous_format)
    example = _example_input(card)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["input"],
        output_names=["logits", "embedding"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}, "embedding": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = CARD_KEY, card.to_json()
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    sidecar = write_sidecar(card, path)
    diff, latency = float("nan"), None
    if check:
        diff = onnx_parity(model, path, card)
        latency = ort_latency_ms(path, card, latency_runs)
    logger.info("exported %s: max |logit diff| %.2e, ORT b1 %s ms", path, diff, latency)
    return ExportReport(path, sidecar, diff, latency)


def _ort_session(path: Path, threads: int = 0):  # noqa: ANN202 - onnxruntime type
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_parity(model: FerNet, path: Path, card: ModelCard, batch: int = 4) -> float:
    """Max absolute logit difference between torch and ONNX Runtime on random input."""
    x = _example_input(card, batch, seed=1)
    with torch.no_grad():
        expected = model.eval()(x)[0].numpy()
    got = _ort_session(path).run(["logits"], {"input": x.numpy()})[0]
    return float(np.abs(expected - got).max())


def ort_latency_ms(path: Path, card: ModelCard, runs: int = 200, threads: int = 0) -> float:
    """Median ONNX Runtime CPU latency (ms) for one face (batch 1)."""
    session = _ort_session(path, threads)
    x = _example_input(card, 1).numpy()
    for _ in range(10):
        session.run(None, {"input": x})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {"input": x})
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def read_onnx_card(path: Path) -> ModelCard:
    """The model card embedded in an ONNX file's metadata.

    Raises:
        ModelError: No card in the file.
    """
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    for entry in proto.metadata_props:
        if entry.key == CARD_KEY:
            return ModelCard.from_json(entry.value)
    raise ModelError(f"{path} has no {CARD_KEY} metadata")


def read_any_card(path: Path) -> ModelCard:
    """The card of an exported model: its sidecar ``.json`` (or that file itself), else the ONNX."""
    path = Path(path)
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        for key in ("sha256", "file"):
            data.pop(key, None)
        return ModelCard.from_dict(data)
    return read_sidecar(path) or read_onnx_card(path)


def export_torchscript(model: FerNet, card: ModelCard, path: Path) -> Path:
    """Trace ``model`` to TorchScript at ``<stem>.pt`` with ``card.json`` in the extra files.

    Returns:
        The written path.
    """
    path = Path(path).with_suffix(".pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    card = _check_card(model, card)
    model = model.eval().cpu()
    with torch.no_grad():
        traced = torch.jit.trace(model, _example_input(card), check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={"card.json": card.to_json()})
    logger.info("exported TorchScript %s", path)
    return path
