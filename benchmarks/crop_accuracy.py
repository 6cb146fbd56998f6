"""Accuracy lost by the runtime crop path on FERPlus test faces.

Each FER2013Test face (FERPlus majority protocol) is classified twice with the same model:
directly from the 48 px image (``to_model_input``), and through the runtime path: upscaled to
192 px, BlazeFace detection, ``collate`` (crop_faces with the card's framing) and inference via
``open_backend``. A face the detector misses counts as wrong for the pipeline. Acceptance: the
pipeline loses at most 2 accuracy points.

Usage:
    python benchmarks/crop_accuracy.py --model weights/fer_default.onnx [--n 1000]
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np
import typer
from rich.console import Console
from rich.progress import track

from fer_live.detect.mediapipe import MediapipeDetector
from fer_live.infer.backends import InferenceBackend, open_backend
from fer_live.infer.batch import collate
from fer_live.infer.card import CropFraming, ModelCard
from fer_live.infer.preprocess import to_model_input
from fer_live.trainer.data.ferplus import read_ferplus
from fer_live.types import Frame, Tracks

REPO = Path(__file__).resolve().parents[1]
FERPLUS = REPO.parent / "shared" / "data" / "ferplus"
RESULTS = REPO / "benchmarks" / "results"
MEASURED = RESULTS / "crop_framing.json"
UPSCALE = 192
CHUNK = 64


def pick_framing(card: ModelCard, framing: str) -> ModelCard:
    """The card, with its crop replaced by the measured or identity framing if asked."""
    if framing == "card":
        return card
    if framing == "identity":
        return dataclasses.replace(card, crop=CropFraming())
    if framing == "measured":
        data = json.loads(MEASURED.read_text())
        crop = CropFraming(data["scale"], data["shift_x"], data["shift_y"])
        return dataclasses.replace(card, crop=crop)
    raise typer.BadParameter(f"framing must be card, measured or identity, got {framing!r}")


def label_map(card: ModelCard, classes: tuple[str, ...]) -> np.ndarray:
    """Index of each dataset class among the card's labels."""
    missing = [c for c in classes if c not in card.labels]
    if missing:
        raise SystemExit(f"model labels {card.labels} lack FERPlus classes {missing}")
    return np.asarray([card.labels.index(c) for c in classes], np.int64)


def central_box(detector: MediapipeDetector, frame: Frame) -> np.ndarray | None:
    """The detected box closest to the image centre, (1, 4), or None."""
    boxes = detector.detect(frame)
    if len(boxes) == 0:
        return None
    h, w = frame.image.shape[:2]
    mid = (boxes.xyxy[:, :2] + boxes.xyxy[:, 2:]) / 2
    best = int(np.argmin(np.linalg.norm(mid - [w / 2, h / 2], axis=1)))
    return boxes.xyxy[best : best + 1]


def classify_chunk(
    model: InferenceBackend,
    detector: MediapipeDetector,
    grays: list[np.ndarray],
    start: int,
    pad: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Direct and pipeline predictions for one chunk; pipeline is -1 where no face was found."""
    card = model.card
    direct = model.infer(to_model_input(np.stack(grays), card)).logits.argmax(axis=1)
    items, found = [], np.zeros(len(grays), bool)
    for i, gray in enumerate(grays):
        big = cv2.resize(gray, (UPSCALE, UPSCALE), interpolation=cv2.INTER_CUBIC)
        if pad:  # a black border lets the detector see the whole (tightly cropped) face
            big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        frame = Frame(start + i, 0.0, cv2.cvtColor(big, cv2.COLOR_GRAY2BGR))
        box = central_box(detector, frame)
        if box is not None:
            found[i] = True
            tracks = Tracks(box, np.array([0]), np.ones(1, np.float32), np.ones(1, bool))
            items.append((frame, tracks))
    pipeline = np.full(len(grays), -1, np.int64)
    if items:
        batch = collate(items, card)
        pipeline[found] = model.infer(batch.pixels).logits.argmax(axis=1)
    return direct, pipeline, found


def evaluate(model: InferenceBackend, paths: list[Path], pad: int = 0) -> tuple[np.ndarray, ...]:
    """Direct predictions, pipeline predictions (-1 = missed) and detection flags."""
    direct, pipeline, found = [], [], []
    chunks = range(0, len(paths), CHUNK)
    with MediapipeDetector() as detector:
        for start in track(chunks, description="classifying FERPlus test faces"):
            grays = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths[start : start + CHUNK]]
            d, p, f = classify_chunk(model, detector, grays, start, pad)
            direct.append(d)
            pipeline.append(p)
            found.append(f)
    return np.concatenate(direct), np.concatenate(pipeline), np.concatenate(found)


def report(truth: np.ndarray, direct: np.ndarray, pipeline: np.ndarray, found: np.ndarray) -> dict:
    """Accuracies (in %) of both paths, overall and on the detected faces."""

    def acc(pred: np.ndarray, mask: np.ndarray) -> float:
        return round(100.0 * float((pred[mask] == truth[mask]).mean()), 2) if mask.any() else 0.0

    everything = np.ones_like(found)
    result = {
        "n": int(len(truth)),
        "detected": int(found.sum()),
        "detection_rate": round(float(found.mean()), 4),
        "direct_acc": acc(direct, everything),
        "pipeline_acc": acc(pipeline, everything),
        "direct_acc_detected": acc(direct, found),
        "pipeline_acc_detected": acc(pipeline, found),
    }
    result["drop_points"] = round(result["direct_acc"] - result["pipeline_acc"], 2)
    result["passes_2_point_budget"] = bool(result["drop_points"] <= 2.0)
    return result


def main(
    model: Path = typer.Option(..., help="model file (.onnx or TorchScript .pt)"),
    n: int = typer.Option(0, help="number of test images (0 = all)"),
    seed: int = typer.Option(0, help="sampling seed when --n is set"),
    framing: str = typer.Option("card", help="crop framing: card, measured or identity"),
    pad: int = typer.Option(0, help="black border (px) around the 192 px face for the detector"),
    out: Path | None = typer.Option(None, help="JSON result (default benchmarks/results/...)"),
) -> None:
    """Compare direct 48 px classification with the detect -> crop -> classify pipeline."""
    logging.basicConfig(level=logging.WARNING)
    console = Console()
    data = read_ferplus(FERPLUS, "test")
    order = np.arange(len(data))
    if 0 < n < len(data):
        order = np.sort(np.random.default_rng(seed).choice(len(data), n, replace=False))
    paths = [data.paths[i] for i in order]
    with open_backend(model) as backend:
        backend.card = pick_framing(backend.card, framing)
        truth = label_map(backend.card, data.classes)[data.labels[order]]
        direct, pipeline, found = evaluate(backend, paths, pad)
        card = backend.card
    result = report(truth, direct, pipeline, found)
    result.update(
        model=str(model),
        model_name=card.name,
        framing=framing,
        pad=pad,
        crop=dataclasses.asdict(card.crop),
        command="python " + " ".join(["benchmarks/crop_accuracy.py", *sys.argv[1:]]),
    )
    out = out or RESULTS / f"crop_accuracy_{Path(model).stem}_{framing}_pad{pad}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(
        f"direct {result['direct_acc']:.2f}%  pipeline {result['pipeline_acc']:.2f}%  "
        f"drop {result['drop_points']:+.2f} points  detected {result['detection_rate']:.1%}"
    )
    console.print(f"wrote {out}")


if __name__ == "__main__":
    typer.run(main)
