"""Score a shipped model file like a method run, so ensembles can take it as a member.

The accurate tier is an ONNX graph (two networks, flip views inside), not a fer-train
checkpoint, so ``score_checkpoint`` cannot read it. This writes the same ``result.json`` and
``outputs_{valid,test}.npz`` a trained run writes, from the file as the product runs it (ONNX
Runtime on ``to_model_input``): the softmax of its raw ``logits``, in FERPlus's class order, so
its members are weighted on the same footing as the runs' plain probabilities.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from fer_live.detect.models import sha256_file
from fer_live.errors import ConfigError
from fer_live.numeric import softmax
from fer_live.trainer.export import read_onnx_card
from fer_live.trainer.model_file_eval import split_logits

MODE = "P"  # the product's single forward pass (plus the graph's own flip views, if any)


def score_model_file(
    model: Path, name: str, data_root: Path, out_dir: Path = Path("runs"), tta: bool = False
) -> dict[str, Any]:
    """Write ``out_dir / name`` with ``model``'s Valid and Test probabilities; returns the result.

    Args:
        model: An exported ``.onnx`` model with its card.
        name: The run's name (folder under ``out_dir``).
        data_root: FERPlus.
        tta: Also average the mirrored face (for a graph without flip views of its own).

    Raises:
        ConfigError: ``model`` is not an ONNX file.
    """
    model = Path(model)
    if model.suffix != ".onnx" or not model.is_file():
        raise ConfigError(f"not an ONNX model file: {model}")
    card = read_onnx_card(model)
    run_dir = Path(out_dir) / name
    run_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"name": name, "method": "model_file", "best_epoch": 0}
    for split in ("valid", "test"):
        logits, labels, _ = split_logits(model, card, data_root, split, tta=tta)
        probs = softmax(logits)
        np.savez_compressed(
            run_dir / f"outputs_{split}.npz", labels=np.asarray(labels), **{f"probs_{MODE}": probs}
        )
        result[split] = {MODE: float((probs.argmax(1) == np.asarray(labels)).mean())}
    result.update(
        primary_mode=MODE, train_s=0.0, train_img_per_s=0.0,
        model_file={"path": str(model), "card": card.name,
                    "sha256": sha256_file(model), "flip_tta": tta},
    )  # fmt: skip
    (run_dir / "result.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result
