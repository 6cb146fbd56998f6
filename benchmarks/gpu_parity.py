"""GPU backend parity with ONNX Runtime on FERPlus Test, through the backend interface.

Every FERPlus Test image (majority protocol, 48 px, normalized by the product's
``to_model_input``) goes through ONNX Runtime on the CPU and through each GPU backend that runs
here: the CUDA torch backend in fp16 with CUDA graphs (what ``--backend cuda`` uses), the same
model in fp16 run eagerly, and TensorRT where an engine runs on this GPU. Per GPU backend:
the largest |Δ probability| (the card's decision rule applied, as users see them), the share
of images with the same top label, and each backend's Test accuracy. Issue 17's bar for fp16:
max |Δ prob| <= 1e-2 and the same top label on >= 99.5 % of Test.

Usage (the GPU machine; FER_SHARED pointing at a FERPlus copy, see gpu_bundle.py):
    python benchmarks/gpu_parity.py --out parity.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer_live.errors import FerLiveError  # noqa: E402
from fer_live.infer.backends import CudaTorchBackend, OnnxBackend  # noqa: E402
from fer_live.infer.backends.base import InferenceBackend  # noqa: E402
from fer_live.infer.card import ModelCard  # noqa: E402
from fer_live.infer.preprocess import to_model_input  # noqa: E402
from fer_live.trainer.config import DEFAULT_DATA_ROOT  # noqa: E402
from fer_live.trainer.data.cache import DEFAULT_CACHE_DIR, pack  # noqa: E402
from fer_live.trainer.data.ferplus import read_ferplus  # noqa: E402

MAX_DELTA = 1e-2
MIN_AGREE = 0.995


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "weights/fer_default.onnx")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--limit", type=int, default=0, help="first N Test images (0 = all)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path")
    return parser.parse_args(argv)


def run_all(backend: InferenceBackend, pixels: np.ndarray, batch: int) -> np.ndarray:
    """The backend's logits for every row of ``pixels``, ``batch`` rows per call."""
    parts = [backend.infer(np.ascontiguousarray(pixels[i : i + batch])).logits
             for i in range(0, len(pixels), batch)]  # fmt: skip
    return np.concatenate(parts)


def compare(reference: np.ndarray, other: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Parity figures of ``other`` probabilities against ``reference`` ones."""
    delta = np.abs(other - reference)
    agree = float(np.mean(other.argmax(1) == reference.argmax(1)))
    worst = float(delta.max()) if delta.size else 0.0
    return {
        "max_abs_delta_prob": worst,
        "p99_abs_delta_prob": float(np.percentile(delta.max(1), 99)) if delta.size else 0.0,
        "top_label_agreement": agree,
        "accuracy": float(np.mean(other.argmax(1) == labels)),
        "meets_bar": worst <= MAX_DELTA and agree >= MIN_AGREE,
    }


def gpu_backends(model: Path, cache: Path, skipped: dict[str, str]) -> dict[str, Any]:
    """name -> factory of each GPU backend to compare (TensorRT only where its engines run)."""
    from fer_live.infer.backends import TensorRTBackend
    from fer_live.infer.backends.trt import runs_here
    from fer_live.infer.engine.compile import compile_engine

    script = model.with_suffix(".pt")
    factories: dict[str, Any] = {
        "cuda_fp16_graphs": lambda: CudaTorchBackend(script, graphs=True),
        "cuda_fp16_eager": lambda: CudaTorchBackend(script, graphs=False),
        "cuda_fp32_eager": lambda: CudaTorchBackend(script, graphs=False, half=False),
    }
    ok, why = runs_here()
    if not ok:
        skipped["tensorrt_fp16"] = why
        return factories

    def tensorrt() -> InferenceBackend:
        return TensorRTBackend(compile_engine(model, "fp16", (64,), cache_dir=cache).path)

    factories["tensorrt_fp16"] = tensorrt
    return factories


def compare_gpu(
    args: argparse.Namespace, card: ModelCard, pixels: np.ndarray, labels: np.ndarray,
    reference: np.ndarray, cache: Path, result: dict[str, Any],
) -> None:  # fmt: skip
    """Adds one row per GPU backend to ``result`` (or its reason under ``skipped``)."""
    for name, factory in gpu_backends(args.model, cache, result["skipped"]).items():
        try:
            with factory() as backend:
                run_all(backend, pixels[: args.batch], args.batch)  # warm-up / capture
                start = time.perf_counter()
                probs = card.decision.probs(run_all(backend, pixels, args.batch))
                seconds = time.perf_counter() - start
        except (FerLiveError, RuntimeError) as exc:
            result["skipped"][name] = str(exc)
            continue
        row = compare(reference, probs, labels)
        row["img_per_s"] = len(pixels) / seconds
        result["backends"][name] = row
        print(name, json.dumps(row))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    items = read_ferplus(args.data_root, "test")
    images = pack(items, cache_dir=DEFAULT_CACHE_DIR).images
    labels = items.labels
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    result: dict[str, Any] = {
        "benchmark": "gpu_parity", "command": " ".join(["gpu_parity.py", *(argv or sys.argv[1:])]),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "model": str(args.model),
        "images": int(len(images)), "batch": args.batch,
        "bar": {"max_abs_delta_prob": MAX_DELTA, "top_label_agreement": MIN_AGREE},
        "backends": {}, "skipped": {},
    }  # fmt: skip
    with OnnxBackend(args.model) as ort:
        card = ort.card
        pixels = to_model_input(images, card)
        reference = card.decision.probs(run_all(ort, pixels, args.batch))
    result["ort_cpu_accuracy"] = float(np.mean(reference.argmax(1) == labels))
    with tempfile.TemporaryDirectory() as cache:
        compare_gpu(args, card, pixels, labels, reference, Path(cache), result)
    text = json.dumps(result, indent=2) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
