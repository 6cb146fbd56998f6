"""Fit the still fallbacks' face probe on the default model's embedding (``<model>.face.npz``).

Positives: FERPlus faces as the still fallback reads them: each 48 px image upscaled to 192 px
(cubic, as ``benchmarks/folder_check.py`` writes them), cut by the model's framing around the
whole-image box, or around a box moved and scaled a little (a weak detector hit on the crop).
Negatives: pictures without a face from ``benchmarks/nonface_check.py``'s generator, with seeds
other than the benchmark's 0 (faceless clip frames, photo and clip backgrounds away from every
face, textures, noise, flat colours), each read whole, in random sub-squares at several scales
and through a 48 px round trip (the FERPlus faces' blur must not be what marks a face), plus the
FERPlus Train pictures whose annotators voted "not a face". Everything goes through the product's
``crop_faces`` and ``to_model_input`` and the model's ``embedding`` output (ONNX Runtime).

Fit: a logistic regression (L2, classes weighted equally, L-BFGS; no randomness but the seeded
sampling). Threshold: the lowest face probability at which at most ``TARGET_FALSE`` of held-out
non-face pictures (generator seeds distinct from the training ones and the benchmark's) have a
crop read as a face, unless ``--threshold`` gives one (chosen with the fallback's other evidence
by ``benchmarks/still_rules.py`` on Valid); Test is reported once.

    python benchmarks/face_probe.py [--model weights/fer_default.onnx]

Writes ``weights/<model stem>.face.npz`` and ``benchmarks/results/face_probe[_<stem>].json``;
put the new file's sha256 into ``fer_live.infer.probe.SHIPPED_PROBES``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from rich.progress import track
from scipy.optimize import minimize

from fer_live.detect.mediapipe import MediapipeDetector
from fer_live.detect.models import sha256_file
from fer_live.detect.plan import still_tiles
from fer_live.infer.backends.ort import OnnxBackend
from fer_live.infer.card import ModelCard
from fer_live.infer.preprocess import crop_faces, to_model_input
from fer_live.infer.probe import probe_path_for, write_probe
from fer_live.infer.still import MIN_FACE_PX, PAD, bordered, whole_image_box
from fer_live.trainer.config import DEFAULT_DATA_ROOT
from fer_live.trainer.data.ferplus import FERPLUS_SPLITS, VOTE_COLUMNS, read_votes
from fer_live.trainer.data.tensors import read_items
from fer_live.types import Frame

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nonface_check import make_nonfaces  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIDE = 192  # the folder check's upscaled side
TRAIN_FACES = 8000
TRAIN_SEEDS = tuple(range(1, 9))  # nonface_check's benchmark is seed 0
HELDOUT_SEEDS = tuple(range(101, 105))
SUB_SQUARES = 3
JITTER = (0.12, 0.85, 1.2)  # shift (x side), scale range of a weak hit's box
HIT_FLOOR = 0.3  # the detector's floor for the non-face pictures' hard crops
L2 = 1e-2
TARGET_FALSE = 0.005  # held-out non-face pictures with a crop taken for a face, at most


def _upscaled(path: Path) -> np.ndarray:
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    big = cv2.resize(gray, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)


def _jittered(box: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    shift, low, high = JITTER
    x0, y0, x1, y1 = box[0]
    side = x1 - x0
    cx, cy = (
        (x0 + x1) / 2 + rng.uniform(-shift, shift) * side,
        (y0 + y1) / 2 + rng.uniform(-shift, shift) * side,
    )
    half = side * rng.uniform(low, high) / 2
    return np.array([[cx - half, cy - half, cx + half, cy + half]], np.float32)


def face_crops(paths: list[Path], card: ModelCard, rng: np.random.Generator) -> np.ndarray:
    """uint8 model crops (2N, S, S): each face whole, then around a jittered box."""
    crops = []
    for path in track(paths, description="faces", transient=True):
        image = _upscaled(path)
        box = whole_image_box(SIDE, SIDE, card.crop)
        crops.append(crop_faces(image, box, card)[0])
        crops.append(crop_faces(image, _jittered(box, rng), card)[0])
    return np.stack(crops)


def _sub_square(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape[:2]
    side = int(min(h, w) * rng.uniform(0.2, 1.0))
    x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    return image[y0 : y0 + side, x0 : x0 + side]


def _round_trip(image: np.ndarray) -> np.ndarray:
    """The picture shrunk to 48 px and blown up again, as the FERPlus faces are."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (48, max(1, round(48 * h / w))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _whole(image: np.ndarray, card: ModelCard) -> np.ndarray:
    h, w = image.shape[:2]
    return crop_faces(image, whole_image_box(w, h, card.crop), card)[0]


def _weak_hits(detector: MediapipeDetector, image: np.ndarray) -> np.ndarray:
    """Boxes (N, 4) the detector finds at a low floor in ``image`` or on its padded copy."""
    h, w = image.shape[:2]
    found = detector.detect(Frame(0, None, image), still_tiles(w, h)).xyxy
    pad = round(PAD * max(h, w))
    padded = detector.detect(Frame(0, None, bordered(image, pad)), 1).xyxy - np.float32(pad)
    return np.concatenate([found, padded])


def nonface_crops(
    seeds: tuple[int, ...], card: ModelCard, rng: np.random.Generator, subs: int
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 model crops of generated non-face pictures, and each crop's picture number: each
    picture whole, through a 48 px round trip, in ``subs`` random sub-squares, and around every
    box the detector finds there at a low floor (what a weak hit would show the probe)."""
    crops, owner = [], []
    with tempfile.TemporaryDirectory() as tmp:
        pictures = []
        for seed in track(seeds, description="non-face pictures", transient=True):
            folder = Path(tmp) / str(seed)
            pictures += [cv2.imread(str(folder / n)) for n in make_nonfaces(folder, seed)]
    pictures = [p for p in pictures if min(p.shape[:2]) >= MIN_FACE_PX]
    with MediapipeDetector(min_score=HIT_FLOOR) as detector:
        for k, image in enumerate(track(pictures, description="non-face crops", transient=True)):
            views = [image, _round_trip(image)] + [_sub_square(image, rng) for _ in range(subs)]
            for view in views:
                crops.append(_whole(np.ascontiguousarray(view), card))
                owner.append(k)
            hits = _weak_hits(detector, image)
            crops.extend(crop_faces(image, hits, card))
            owner.extend([k] * len(hits))
    return np.stack(crops), np.asarray(owner)


def not_face_votes(data_root: Path, split: str) -> list[Path]:
    """FERPlus pictures of ``split`` whose majority of votes says "not a face"."""
    folder = data_root / FERPLUS_SPLITS[split]
    names, votes = read_votes(folder / "label.csv")
    nf = VOTE_COLUMNS.index("NF")
    keep = votes[:, nf] > 0.5 * votes.sum(axis=1)
    return [folder / n for n, k in zip(names, keep, strict=True) if k]


def embed(backend: OnnxBackend, crops: np.ndarray, batch: int = 256) -> np.ndarray:
    """The model's embedding (N, D) of uint8 crops."""
    rows = []
    for start in track(range(0, len(crops), batch), description="embedding", transient=True):
        out = backend.infer(to_model_input(crops[start : start + batch], backend.card))
        assert out.embedding is not None, "the model has no embedding output"
        rows.append(out.embedding.astype(np.float64))
    return np.concatenate(rows)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Weights (D,) and bias on raw features; standardized inside, classes weighted equally."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / std
    weights = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean())) / len(y)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:-1], theta[-1]
        logit = z @ w + b
        p = 1.0 / (1.0 + np.exp(-logit))
        nll = np.logaddexp(0.0, logit) - y * logit
        grad = weights * (p - y)
        value = float(weights @ nll + 0.5 * l2 * w @ w)
        return value, np.append(z.T @ grad + l2 * w, grad.sum())

    theta = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B",
                     options={"maxiter": 2000}).x  # fmt: skip
    w = theta[:-1] / std
    return w, float(theta[-1] - w @ mean)


def _prob(x: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x @ w + b, -60, 60)))


def choose_threshold(picture_max: np.ndarray) -> float:
    """The lowest threshold that takes at most ``TARGET_FALSE`` of the pictures for a face."""
    allowed = int(np.floor(TARGET_FALSE * len(picture_max)))
    ranked = np.sort(picture_max)[::-1]
    return float(np.nextafter(ranked[allowed], 1.0))


def per_picture_max(prob: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """The highest face probability among each picture's crops."""
    out = np.zeros(owner.max() + 1)
    np.maximum.at(out, owner, prob)
    return out


def split_faces(data_root: Path, split: str, n: int | None, rng: np.random.Generator) -> list:
    paths = [Path(p) for p in read_items("ferplus", data_root, split).paths]
    if n is not None and n < len(paths):
        paths = [paths[i] for i in sorted(rng.choice(len(paths), n, replace=False))]
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=ROOT / "weights" / "fer_default.onnx")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="face probability threshold (default: chosen on held-out non-faces)",
    )
    parser.add_argument(
        "--results", type=Path, default=None, help="default: results/face_probe[_<stem>].json"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    backend = OnnxBackend(args.model, threads=1)
    card = backend.card

    def faces(split: str, n: int | None) -> np.ndarray:
        return embed(backend, face_crops(split_faces(args.data_root, split, n, rng), card, rng))

    train_pos = faces("train", TRAIN_FACES)
    neg_crops, _ = nonface_crops(TRAIN_SEEDS, card, rng, SUB_SQUARES)
    nf = np.stack([_whole(_upscaled(p), card) for p in not_face_votes(args.data_root, "train")])
    train_neg = embed(backend, np.concatenate([neg_crops, nf]))
    x = np.concatenate([train_pos, train_neg])
    y = np.concatenate([np.ones(len(train_pos)), np.zeros(len(train_neg))])
    w, b = fit_logistic(x, y, L2)

    held_crops, held_owner = nonface_crops(HELDOUT_SEEDS, card, rng, SUB_SQUARES)
    held = _prob(embed(backend, held_crops), w, b)
    first = np.r_[True, held_owner[1:] != held_owner[:-1]]  # each picture read whole
    picture_max = per_picture_max(held, held_owner)
    threshold = args.threshold or choose_threshold(picture_max)
    valid = _prob(faces("valid", None), w, b)
    test = _prob(faces("test", None), w, b)
    metrics = {
        "train": {"faces": len(train_pos), "nonfaces": len(train_neg),
                  "face_rate": _rate(_prob(train_pos, w, b), threshold),
                  "nonface_rate": _rate(_prob(train_neg, w, b), threshold)},
        "heldout_nonfaces": {"pictures": int(first.sum()), "crops": len(held),
                             "whole_rate": _rate(held[first], threshold),
                             "any_crop_rate": _rate(picture_max, threshold),
                             "crop_rate": _rate(held, threshold)},
        "valid_face_rate": {"whole": _rate(valid[0::2], threshold),
                            "jittered": _rate(valid[1::2], threshold)},
        "test_face_rate": {"whole": _rate(test[0::2], threshold),
                           "jittered": _rate(test[1::2], threshold)},
    }  # fmt: skip
    out = args.out or probe_path_for(args.model)
    base = sha256_file(args.model)
    write_probe(out, w, b, threshold, base_sha256=base, model=args.model.name, l2=L2,
                train_seeds=list(TRAIN_SEEDS), heldout_seeds=list(HELDOUT_SEEDS),
                target_false=TARGET_FALSE, metrics=metrics)  # fmt: skip
    command = shlex.join(["python", "benchmarks/face_probe.py", *sys.argv[1:]])
    result = {"command": command, "probe": out.name, "sha256": sha256_file(out),
              "threshold": threshold, **metrics}  # fmt: skip
    stem = Path(args.model).stem
    name = "face_probe.json" if stem == "fer_default" else f"face_probe_{stem}.json"
    results = args.results or ROOT / "benchmarks" / "results" / name
    results.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=1))


def _rate(prob: np.ndarray, threshold: float) -> float:
    return round(float((prob >= threshold).mean()), 4)


if __name__ == "__main__":
    main()
