"""Score an exported model file the way the product runs it: ONNX Runtime on ``to_model_input``.

``fer-train calibrate`` fits the decision rule from these logits and writes it into the card of
every file of the model (ONNX metadata, sidecar, TorchScript extra file), so what was measured is
what ships.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from fer_live.infer.card import CARD_KEY, ModelCard, write_sidecar
from fer_live.infer.decision import DecisionRule
from fer_live.infer.preprocess import to_model_input
from fer_live.trainer.calibrate import describe, fit_decision_rule
from fer_live.trainer.data.cache import DEFAULT_CACHE_DIR, pack
from fer_live.trainer.data.ferplus import label_columns
from fer_live.trainer.data.tensors import read_items
from fer_live.trainer.export import _ort_session, read_onnx_card
from fer_live.trainer.still_eval import still_probs


def onnx_logits(
    path: Path,
    card: ModelCard,
    images: np.ndarray,
    tta: bool = False,
    batch: int = 256,
    threads: int = 0,
) -> np.ndarray:
    """Raw logits (N, C) of uint8 faces (N, H, W) through ONNX Runtime; ``tta`` adds the flip.

    ``threads`` caps ONNX Runtime's threads (0: its default, every core).
    """
    session = _ort_session(path, threads)
    out = []
    for start in range(0, len(images), batch):
        x = to_model_input(np.ascontiguousarray(images[start : start + batch]), card)
        logits = session.run(["logits"], {"input": x})[0]
        if tta:
            flipped = np.ascontiguousarray(x[..., ::-1])
            logits = (logits + session.run(["logits"], {"input": flipped})[0]) / 2.0
        out.append(logits)
    return np.concatenate(out) if out else np.zeros((0, card.num_classes), np.float32)


def split_logits(
    path: Path, card: ModelCard, data_root: Path, split: str, tta: bool = False
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Logits (in the data's class order), integer labels and class names of a FERPlus split."""
    items = read_items("ferplus", data_root, split)
    packed = pack(items, cache_dir=DEFAULT_CACHE_DIR)
    logits = onnx_logits(path, card, packed.images, tta=tta)
    if tuple(card.labels) != tuple(packed.classes):
        logits = logits[:, label_columns(card.labels, packed.classes)]
    return logits, packed.labels, tuple(packed.classes)


def train_prior(data_root: Path, classes: tuple[str, ...]) -> np.ndarray:
    """Class frequencies of FERPlus Train (majority labels)."""
    items = read_items("ferplus", data_root, "train")
    counts = np.bincount(items.labels, minlength=len(classes)).astype(np.float64)
    return counts / counts.sum()


def replace_card(path: Path, card: ModelCard) -> list[Path]:
    """Write ``card`` into the ONNX file, its sidecar and a TorchScript twin (``.pt``) if present.

    Returns:
        The files written.
    """
    import onnx

    proto = onnx.load(str(path))
    entries = [e for e in proto.metadata_props if e.key != CARD_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(entries)
    entry = proto.metadata_props.add()
    entry.key, entry.value = CARD_KEY, card.to_json()
    onnx.save(proto, str(path))
    written = [path, write_sidecar(card, path)]
    twin = path.with_suffix(".pt")
    if twin.is_file():
        import torch

        from fer_live.infer.backends.torch_backend import read_torchscript_card

        read_torchscript_card(twin)  # a twin without a valid card is refused before torch runs it
        module = torch.jit.load(str(twin), map_location="cpu")
        torch.jit.save(module, str(twin), _extra_files={"card.json": card.to_json()})
        written.append(twin)
    return written


def still_logits(
    path: Path, card: ModelCard, data_root: Path, split: str
) -> tuple[np.ndarray, np.ndarray]:
    """Raw logits (data class order) and labels of a split read as tight crops by the product.

    Faces the product found no face in are left out. The product applies the card's current
    rule, so it is undone here: raw = (log p - offsets) * temperature, up to a per-row constant.
    """
    items = read_items("ferplus", data_root, split)
    packed = pack(items, cache_dir=DEFAULT_CACHE_DIR)
    probs = still_probs(path, packed.images)
    found = ~np.isnan(probs).any(axis=1)
    rule = card.decision
    offsets = np.asarray(rule.offsets or [0.0] * card.num_classes, np.float32)
    logits = (np.log(np.clip(probs[found], 1e-12, None)) - offsets) * rule.temperature
    if tuple(card.labels) != tuple(packed.classes):
        logits = logits[:, label_columns(card.labels, packed.classes)]
    return logits, np.asarray(packed.labels)[found]


def calibrate_model(
    path: Path,
    data_root: Path,
    max_acc_drop: float = 0.005,
    write: bool = True,
    product_guard: bool = True,
    read_test: bool = True,
) -> dict[str, Any]:
    """Fit the decision rule on Valid, score it on Test, and (``write``) put it in the card.

    ``read_test=False`` leaves Test unread, for candidates that are still being chosen.

    Returns:
        A JSON-ready report: the rule, and Valid/Test scores with the rule off, with the
        temperature only, and on; with ``product_guard``, Valid as the product reads a folder
        of tight crops must not lose more than ``max_acc_drop`` either.
    """
    card = read_onnx_card(path)
    valid, valid_y, classes = split_logits(path, card, data_root, "valid")
    guards = [still_logits(path, card, data_root, "valid")] if product_guard else []
    prior = train_prior(data_root, classes)
    rule = fit_decision_rule(valid, valid_y, prior, classes, max_acc_drop, guards)
    rules = {"off": DecisionRule(), "temperature": DecisionRule(rule.temperature), "on": rule}
    report: dict[str, Any] = {
        "model": card.name,
        "file": str(path),
        "rule": {
            "temperature": rule.temperature,
            "offsets": dict(zip(classes, rule.offsets, strict=True)),
        },
        "protocol": "rule fit on FERPlus Valid (no TTA, as the product runs); "
        + ("Test reported once" if read_test else "Test not read")
        + (
            "; alpha also bounded on Valid read as 192 px tight crops by the product"
            if guards
            else ""
        ),
    }
    scored = [("valid", valid, valid_y)]
    if read_test:
        test, test_y, _ = split_logits(path, card, data_root, "test")
        scored.append(("test", test, test_y))
    for split, logits, y in scored:
        report[split] = {name: describe(r, logits, y, classes) for name, r in rules.items()}
    for logits, y in guards:
        report["valid_tight_crops_cli_path"] = {
            name: describe(r, logits, y, classes) for name, r in rules.items()
        }
    if write:
        if tuple(card.labels) != classes:
            offsets = dict(zip(classes, rule.offsets, strict=True))
            rule = replace(rule, offsets=tuple(offsets[label] for label in card.labels))
        report["written"] = [str(p) for p in replace_card(path, replace(card, decision=rule))]
    return json.loads(json.dumps(report))
