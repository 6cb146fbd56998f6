"""Where the product's path loses accuracy: the crop, or the rest of the pipeline.

Each FERPlus face of a split is read three ways with the same model file (ONNX Runtime, one
thread): directly (48 px through ``to_model_input``), as the product crops it
(``fer_live.trainer.data.product``: upscaled to 192 px, detected, cut by the card's framing) and
through the product's still stages (``fer_live.trainer.still_eval``). Accuracy with the card's
decision rule on the faces the product finds, and everything over the whole split. When the
product crops alone lose what the pipeline loses, the loss is in the framing, and training on
product crops (``crops: product`` in a recipe) is the remedy.

    python benchmarks/product_path.py [--split valid] [--model weights/fer_default.onnx]

Writes ``benchmarks/results/product_path_<model>_<split>.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from fer_live.infer.card import read_sidecar
from fer_live.infer.preprocess import to_model_input
from fer_live.trainer.config import DEFAULT_DATA_ROOT
from fer_live.trainer.data.cache import DEFAULT_CACHE_DIR, pack
from fer_live.trainer.data.product import cached_product_crops
from fer_live.trainer.data.tensors import read_items
from fer_live.trainer.still_eval import still_probs

ROOT = Path(__file__).resolve().parents[1]


def model_logits(model: Path, x: np.ndarray, chunk: int = 256) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    parts = [session.run(["logits"], {name: x[i : i + chunk]})[0] for i in range(0, len(x), chunk)]
    return np.concatenate(parts)


def accuracies(
    direct: np.ndarray, product: np.ndarray, pipeline: np.ndarray, labels: np.ndarray
) -> dict[str, float]:
    """Accuracies (%) of three (N, C) probability arrays; ``pipeline`` rows are NaN where the
    product found no face."""
    found = ~np.isnan(pipeline).any(axis=1)

    def acc(probs: np.ndarray, rows: np.ndarray) -> float:
        return round(100.0 * float((probs[rows].argmax(axis=1) == labels[rows]).mean()), 2)

    every = np.ones(len(labels), bool)
    return {
        "found_pct": round(100.0 * float(found.mean()), 2),
        "direct_all": acc(direct, every),
        "direct_found": acc(direct, found),
        "product_crops_found": acc(product, found),
        "pipeline_found": acc(pipeline, found),
        # a face the product misses counts as wrong, as in the folder check
        "pipeline_all": round(acc(pipeline, found) * float(found.mean()), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=("valid", "test"), default="valid")
    parser.add_argument("--model", type=Path, default=ROOT / "weights" / "fer_default.onnx")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    args = parser.parse_args()
    card = read_sidecar(args.model)
    if card is None:
        raise SystemExit(f"error: {args.model} has no model card")
    items = read_items("ferplus", args.data_root, args.split)
    faces = pack(items, None, DEFAULT_CACHE_DIR).images
    labels = np.asarray(items.labels)
    crops = cached_product_crops(faces, args.model, card.input_size, DEFAULT_CACHE_DIR)
    direct = card.decision.probs(model_logits(args.model, to_model_input(faces, card)))
    product = card.decision.probs(model_logits(args.model, to_model_input(crops, card)))
    pipeline = still_probs(args.model, faces)
    result = {
        "model": args.model.name,
        "split": args.split,
        "images": len(labels),
        "accuracy_pct": accuracies(direct, product, pipeline, labels),
        "command": f"python benchmarks/product_path.py --split {args.split} --model {args.model}",
    }
    out = ROOT / "benchmarks" / "results" / f"product_path_{args.model.stem}_{args.split}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["accuracy_pct"], indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
