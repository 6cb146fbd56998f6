"""The tight-crop folder check, through the CLI as a user runs it.

Every FERPlus Test image is upscaled to 192 px (cubic, no border) into a folder, then
``fer-live -s FOLDER --jsonl OUT --headless [--model M]`` reads it. Scoring: the best-scoring face
of each image is its answer; an image with no record counts as wrong.

    python benchmarks/folder_check.py [--model weights/fer_accurate.onnx]

Writes ``benchmarks/results/folder_check_<model>.json``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from fer_live.trainer.calibrate import score
from fer_live.trainer.config import DEFAULT_DATA_ROOT
from fer_live.trainer.data.tensors import read_items

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SIDE = 192


def make_folder(
    data_root: Path, folder: Path, split: str = "test"
) -> tuple[list[str], np.ndarray, tuple[str, ...]]:
    """Write the upscaled images of a split (once); returns names, labels and class names."""
    items = read_items("ferplus", data_root, split)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for path in items.paths:
        out = folder / Path(path).name
        names.append(out.name)
        if not out.is_file():
            gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            cv2.imwrite(str(out), cv2.resize(gray, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC))
    return names, np.asarray(items.labels), tuple(items.classes)


def best_records(jsonl: Path) -> dict[str, dict]:
    """The best-scoring face's record of each image, by file name."""
    best: dict[str, dict] = {}
    for line in jsonl.read_text().splitlines():
        record = json.loads(line)
        name = Path(record["source"]).name
        if name not in best or record["score"] > best[name]["score"]:
            best[name] = record
    return best


def run_cli(
    folder: Path, jsonl: Path, model: Path | None, extra: tuple[str, ...] = ()
) -> tuple[list[str], float]:
    """``fer-live -s FOLDER --jsonl JSONL --headless [--model M] [extra]`` in a child process
    (its progress bar on stderr); returns the command as a user types it and its wall time."""
    cmd = ["fer-live", "-s", str(folder), "--jsonl", str(jsonl), "--headless"]
    if model is not None:
        cmd += ["--model", str(model)]
    cmd += list(extra)
    start = time.perf_counter()
    entry = "import sys; from fer_live.commands.app import main; sys.exit(main())"
    subprocess.run([sys.executable, "-c", entry, *cmd[1:]], check=True)
    return cmd, time.perf_counter() - start


def answers(jsonl: Path, names: list[str], classes: tuple[str, ...]) -> tuple[np.ndarray, list]:
    """Predicted class per image (-1: no face) and the box source of the answer."""
    best = best_records(jsonl)
    preds = np.array([classes.index(best[n]["label"]) if n in best else -1 for n in names])
    sources = [best[n]["box_source"] if n in best else "none" for n in names]
    return preds, sources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=None, help="model file (default: shipped)")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--split", default="test", help="FERPlus split (valid to select on)")
    parser.add_argument("--folder", type=Path, default=None, help="where the crops are written")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    folder = args.folder or ROOT / ".cache" / f"tight_ferplus_{args.split}"
    names, labels, classes = make_folder(args.data_root, folder, args.split)
    with tempfile.TemporaryDirectory() as tmp:
        jsonl = Path(tmp) / "faces.jsonl"
        cmd, wall_s = run_cli(folder, jsonl, args.model)
        preds, sources = answers(jsonl, names, classes)
    found = preds >= 0
    scores = score(labels, np.where(found, preds, (labels + 1) % len(classes)), len(classes))
    by_source = {}
    for source in sorted(set(sources)):
        mask = np.array([s == source for s in sources])
        by_source[source] = {
            "images": int(mask.sum()),
            "accuracy": round(float((preds[mask] == labels[mask]).mean()), 4),
        }
    model = args.model.stem if args.model else "fer_default"
    result = {
        "command": shlex.join(cmd),
        "model": str(args.model or "weights/fer_default.onnx"),
        "images": len(names),
        "face_found": round(float(found.mean()), 4),
        **scores.to_dict(classes),
        "by_box_source": by_source,
        "wall_s": round(wall_s, 1),
        "split": args.split,
        "protocol": "FERPlus images upscaled to 192 px (cubic, no border); best-scoring face per "
        "image; no face = wrong",
    }
    suffix = "" if args.split == "test" else f"_{args.split}"
    out = args.out or RESULTS / f"folder_check_{model}{suffix}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("face_found", "accuracy", "balanced_accuracy",
                                              "macro_f1", "by_box_source")}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
