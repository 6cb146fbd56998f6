"""Measure how BlazeFace boxes frame FER2013 faces, so runtime crops match the training crops.

FER2013 faces are 48 x 48 grayscale crops. We upscale a fixed-seed sample to 192 px, run the
runtime detector on it (bare, and with a border so it sees some context), and express the true
image square relative to the detected box: with box centre (cx, cy) and size s = (w + h) / 2,
``scale = 192 / s``, ``shift_x = (96 - cx) / s``, ``shift_y = (96 - cy) / s``. The medians become
the ``crop`` entry of every model card. Then we check them: ``crop_faces`` of the upscaled image
with the detected box should reproduce the 48 px image.

Usage:
    python benchmarks/crop_framing.py --n 2000
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import typer
from rich.console import Console
from rich.progress import track

from fer_live.detect.mediapipe import MediapipeDetector, box_iou
from fer_live.infer.card import CropFraming, ModelCard
from fer_live.infer.preprocess import crop_faces, crop_squares
from fer_live.types import Frame

REPO = Path(__file__).resolve().parents[1]
FERPLUS = REPO.parent / "shared" / "data" / "ferplus"
RESULT = REPO / "benchmarks" / "results" / "crop_framing.json"
UPSCALE = 192
SPLITS = ("FER2013Train", "FER2013Valid")


@dataclass(frozen=True)
class Variant:
    """How the upscaled face is shown to the detector: bare, or inside a border."""

    name: str
    pad: int = 0
    border: int = cv2.BORDER_CONSTANT


VARIANTS = (
    Variant("bare"),
    Variant("replicate96", 96, cv2.BORDER_REPLICATE),
    Variant("black48", 48, cv2.BORDER_CONSTANT),
    Variant("black96", 96, cv2.BORDER_CONSTANT),
)


def sample_images(root: Path, splits: tuple[str, ...], n: int, seed: int) -> list[Path]:
    """A fixed-seed sample of ``n`` PNGs from the given FERPlus split folders."""
    files = sorted(p for split in splits for p in (root / split).glob("*.png"))
    if not files:
        raise SystemExit(f"no FERPlus images under {root}")
    pick = np.random.default_rng(seed).choice(len(files), size=min(n, len(files)), replace=False)
    return [files[i] for i in sorted(pick)]


def upscale(gray48: np.ndarray, size: int = UPSCALE) -> np.ndarray:
    """The 48 px face as a ``size`` px BGR image (INTER_CUBIC)."""
    big = cv2.resize(gray48, (size, size), interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)


def detect_face(detector: MediapipeDetector, image: np.ndarray, variant: Variant) -> np.ndarray:
    """The best detector box (4,) in the coordinates of ``image``, or None if none was found."""
    p = variant.pad
    shown = cv2.copyMakeBorder(image, p, p, p, p, variant.border, value=0) if p else image
    boxes = detector.detect(Frame(index=0, t_s=0.0, image=shown))
    if len(boxes) == 0:
        return None
    centre = np.array([shown.shape[1] / 2, shown.shape[0] / 2])
    mid = (boxes.xyxy[:, :2] + boxes.xyxy[:, 2:]) / 2
    best = int(np.argmin(np.linalg.norm(mid - centre, axis=1)))
    return boxes.xyxy[best].astype(np.float64) - p


def framing_of(box: np.ndarray, size: int = UPSCALE) -> tuple[float, float, float]:
    """(scale, shift_x, shift_y) of the true image square relative to a detector box."""
    x0, y0, x1, y1 = box
    s = ((x1 - x0) + (y1 - y0)) / 2.0
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    half = size / 2.0
    return size / s, (half - cx) / s, (half - cy) / s


def summarize(rows: np.ndarray, total: int) -> dict[str, object]:
    """Medians, IQRs and detection rate of (scale, shift_x, shift_y) rows."""
    names = ("scale", "shift_x", "shift_y")
    out: dict[str, object] = {"n": total, "detected": int(len(rows))}
    out["detection_rate"] = round(len(rows) / max(total, 1), 4)
    if len(rows) == 0:
        return out
    q25, q50, q75 = np.percentile(rows, [25, 50, 75], axis=0)
    for i, name in enumerate(names):
        out[name] = round(float(q50[i]), 4)
    out["iqr"] = {
        name: [round(float(q25[i]), 4), round(float(q75[i]), 4)] for i, name in enumerate(names)
    }
    return out


def check_card(framing: CropFraming) -> ModelCard:
    """A 48 px grayscale card using ``framing`` (what a FER2013-trained model would carry)."""
    return ModelCard(
        name="framing_check", labels=("face",), input_size=48, outputs=("logits",), crop=framing
    )


def reproduction_error(
    image: np.ndarray, gray48: np.ndarray, box: np.ndarray, card: ModelCard
) -> tuple[float, float]:
    """Mean abs pixel error of the 48 px crop vs the original, and IoU of the crop square."""
    crop = crop_faces(image, box[None].astype(np.float32), card)[0]
    mae = float(np.abs(crop.astype(np.float32) - gray48.astype(np.float32)).mean())
    cx, cy, side = crop_squares(box[None], card.crop)[0]
    square = np.array([[cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]])
    truth = np.array([[0.0, 0.0, image.shape[1], image.shape[0]]])
    return mae, float(box_iou(square, truth)[0, 0])


def measure(paths: list[Path], detector: MediapipeDetector) -> dict[str, list]:
    """Detect every face under every variant; returns variant -> list of (path, box|None)."""
    found: dict[str, list] = {v.name: [] for v in VARIANTS}
    for path in track(paths, description="detecting FER faces"):
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        image = upscale(gray)
        for variant in VARIANTS:
            found[variant.name].append((path, detect_face(detector, image, variant)))
    return found


def verify(found: list, framing: CropFraming) -> dict[str, float]:
    """Reproduction error of ``crop_faces`` with ``framing`` over the detected faces."""
    card = check_card(framing)
    errors = []
    for path, box in found:
        if box is None:
            continue
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        errors.append(reproduction_error(upscale(gray), gray, box, card))
    arr = np.asarray(errors)
    return {
        "mean_abs_pixel_error": round(float(arr[:, 0].mean()), 3),
        "median_abs_pixel_error": round(float(np.median(arr[:, 0])), 3),
        "mean_square_iou": round(float(arr[:, 1].mean()), 4),
        "median_square_iou": round(float(np.median(arr[:, 1])), 4),
    }


def summarize_variants(found: dict[str, list]) -> dict[str, dict]:
    """Framing statistics per variant, each checked with its own median framing."""
    variants: dict[str, dict] = {}
    for name, rows in found.items():
        boxes = [framing_of(box) for _, box in rows if box is not None]
        stats = summarize(np.asarray(boxes).reshape(-1, 3), len(rows))
        stats["check"] = verify(
            rows, CropFraming(stats["scale"], stats["shift_x"], stats["shift_y"])
        )
        variants[name] = stats
    return variants


def main(
    n: int = typer.Option(2000, help="number of FERPlus Train+Valid images"),
    seed: int = typer.Option(0, help="sampling seed"),
    out: Path = typer.Option(RESULT, help="where to write the JSON result"),
    variant: str = typer.Option("bare", help="variant whose framing is the result"),
) -> None:
    """Measure the crop framing and write it to benchmarks/results/crop_framing.json."""
    logging.basicConfig(level=logging.WARNING)
    console = Console()
    paths = sample_images(FERPLUS, SPLITS, n, seed)
    with MediapipeDetector() as detector:
        found = measure(paths, detector)
    variants = summarize_variants(found)
    if variant not in variants:
        raise typer.BadParameter(f"variant must be one of {', '.join(variants)}")
    result = {
        **variants[variant],
        "variant": variant,
        "upscale_px": UPSCALE,
        "splits": list(SPLITS),
        "seed": seed,
        "check_identity_framing": verify(found[variant], CropFraming()),
        "variants": variants,
        "command": "python " + " ".join(["benchmarks/crop_framing.py", *sys.argv[1:]]),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    console.print_json(json.dumps(result))
    console.print(f"wrote {out}")


if __name__ == "__main__":
    typer.run(main)
