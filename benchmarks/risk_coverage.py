"""Risk-coverage of ``--min-confidence``: accuracy on the faces answered against the share answered.

A face is answered when its top probability is at least C (``fer_live.infer.decision.is_uncertain``,
the rule the CLI applies); lowering the share answered (coverage) should raise the accuracy on
what is answered. Per model:

* Through the CLI, as ``benchmarks/folder_check.py`` runs it (FERPlus images upscaled to 192 px in
  a folder, ``fer-live -s FOLDER --jsonl``; the best-scoring face answers for its image). C is
  chosen on Valid (the largest C that answers 90 % of Valid), then Test is run once with
  ``--min-confidence C``: its coverage and accuracy are the honest numbers. The Test records
  still hold the probabilities, so the whole Test curve and the C that would answer exactly 90 %
  of Test (chosen on Test: optimistic, for reference) come from the same run. An image where
  no face was found is never answered.
* The robustness suite's shifts (``benchmarks/robustness.py``, FERPlus Test): the curve per shift,
  the accuracy at 90 % coverage, and what the Valid C answers under each shift.

    python benchmarks/risk_coverage.py weights/fer_default.onnx weights/fer_accurate.onnx

Writes ``benchmarks/results/risk_coverage.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Run as a script, so this folder is on sys.path and its modules import by name.
from folder_check import ROOT, best_records, make_folder, run_cli
from rich.console import Console
from rich.progress import track
from robustness import IMAGE_SHIFTS, pasted_probs, shift_probs

from fer_live.infer.decision import CONFIDENCE_DIGITS, UNCERTAIN, is_uncertain
from fer_live.trainer.config import DEFAULT_DATA_ROOT
from fer_live.trainer.data.cache import DEFAULT_CACHE_DIR, pack
from fer_live.trainer.data.tensors import read_items
from fer_live.trainer.export import read_onnx_card

RESULTS = ROOT / "benchmarks" / "results"
TARGET = 0.90
GRID = np.round(np.arange(1.00, 0.095, -0.01), 2)  # coverages the curve is drawn at
PASTED = "pasted 60-80 px in 640x360"
console = Console(stderr=True)


@dataclass(frozen=True)
class Scored:
    """Per image: the top probability as records write it, whether the top class is right, and
    whether a face was found (an image without one is never answered)."""

    confidence: np.ndarray
    correct: np.ndarray
    found: np.ndarray

    def answered(self, c: float | None) -> np.ndarray:
        return self.found & ~is_uncertain(np.nan_to_num(self.confidence), c)

    def at(self, c: float | None) -> dict:
        """Coverage and accuracy on the answered images with threshold ``c``."""
        answered = self.answered(c)
        n = int(answered.sum())
        accuracy = float(self.correct[answered].mean()) if n else float("nan")
        return {
            "C": c,
            "answered": n,
            "coverage": round(n / len(answered), 4),
            "accuracy": round(accuracy, 4),
        }

    def threshold(self, target: float) -> float | None:
        """The largest C that answers at least ``target`` of the images (None: unreachable)."""
        k = math.ceil(target * len(self.found) - 1e-9)
        ranked = np.sort(self.confidence[self.found])[::-1]
        return None if k > len(ranked) or k < 1 else round(float(ranked[k - 1]), CONFIDENCE_DIGITS)

    def curve(self) -> list[list[float]]:
        """[coverage, accuracy] at the largest C answering each coverage of ``GRID``."""
        points = []
        for target in GRID:
            c = self.threshold(float(target))
            if c is not None:
                row = self.at(c)
                points.append([row["coverage"], row["accuracy"]])
        return points


def scored_from_probs(probs: np.ndarray, labels: np.ndarray) -> Scored:
    """From probabilities (N, C) in the labels' class order; a NaN row is a face not found."""
    found = ~np.isnan(probs).any(axis=1)
    clean = np.nan_to_num(probs.astype(np.float64))
    confidence = np.round(clean.max(axis=1), CONFIDENCE_DIGITS)  # as a record writes it
    return Scored(np.where(found, confidence, np.nan), clean.argmax(axis=1) == labels, found)


def scored_from_records(
    best: dict[str, dict], names: list[str], labels: np.ndarray, classes: tuple[str, ...]
) -> Scored:
    """From the best record of each image: its ``confidence`` and the top of its ``probs`` (an
    ``uncertain`` record still holds them)."""
    confidence = np.full(len(names), np.nan)
    correct = np.zeros(len(names), bool)
    for i, name in enumerate(names):
        record = best.get(name)
        if record is not None:
            probs = record["probs"]
            confidence[i] = record["confidence"]
            correct[i] = classes.index(max(probs, key=probs.get)) == labels[i]
    return Scored(confidence, correct, ~np.isnan(confidence))


def cli_split(
    model: Path, folder: Path, split: str, tmp: Path, c: float | None = None
) -> tuple[Scored, dict]:
    """Run the CLI over a split's folder (with ``--min-confidence c`` when given)."""
    names, labels, classes = make_folder(DEFAULT_DATA_ROOT, folder, split)
    jsonl = tmp / f"{model.stem}_{split}.jsonl"
    extra = () if c is None else ("--min-confidence", str(c))
    cmd, wall_s = run_cli(folder, jsonl, model, extra)
    best = best_records(jsonl)
    scored = scored_from_records(best, names, labels, classes)
    info = {
        "command": " ".join(cmd).replace(str(jsonl), "faces.jsonl"),
        "images": len(names),
        "face_found": round(float(scored.found.mean()), 4),
        "wall_s": round(wall_s, 1),
        "uncertain_records": sum(1 for n in names if best.get(n, {}).get("label") == UNCERTAIN),
    }
    return scored, info


def cli_part(model: Path, folders: dict[str, Path], tmp: Path) -> dict:
    """C chosen on Valid, applied once to Test; the Test curve from the same records."""
    valid, valid_info = cli_split(model, folders["valid"], "valid", tmp)
    c = valid.threshold(TARGET)
    test, test_info = cli_split(model, folders["test"], "test", tmp, c)
    at_c = test.at(c)
    # the CLI's own labels must be the rule's: uncertain exactly where a found face is below C
    expected = int((test.found & is_uncertain(np.nan_to_num(test.confidence), c)).sum())
    if test_info["uncertain_records"] != expected:
        raise RuntimeError(f"CLI wrote {test_info['uncertain_records']} uncertain, rule {expected}")
    c_test = test.threshold(TARGET)
    return {
        "valid": {**valid_info, "C_90": c, "at_C_90": valid.at(c)},
        "test": {
            **test_info,
            "all_faces": test.at(None),
            "at_valid_C": at_c,
            "C_90_on_test": c_test,
            "at_C_90_on_test": test.at(c_test),
            "curve": test.curve(),
        },
    }


def shift_part(model: Path, faces: np.ndarray, labels: np.ndarray, classes, c: float) -> dict:
    """Per robustness shift: the curve, accuracy at 90 % coverage, and the Valid C's effect."""
    card = read_onnx_card(model)
    order = [card.labels.index(name) for name in classes]
    probs = {}
    for name in track(list(IMAGE_SHIFTS), description=f"{model.stem} shifts", console=console):
        probs[name] = shift_probs(model, card, faces, IMAGE_SHIFTS[name])[:, order]
    started = time.perf_counter()
    probs[PASTED] = pasted_probs(model, faces, card)[:, order]
    pasted_s = time.perf_counter() - started
    rows = {}
    for name, p in probs.items():
        scored = scored_from_probs(p, labels)
        c90 = scored.threshold(TARGET)
        rows[name] = {
            "all_faces": scored.at(None),
            "C_90": c90,
            "at_C_90": scored.at(c90),
            "at_valid_C": scored.at(c),
            "curve": scored.curve(),
        }
    rows[PASTED]["wall_s"] = round(pasted_s, 1)
    return rows


def _pct(value: float | None) -> str:
    return "-" if value is None or value != value else f"{100 * value:.2f}"


def render(result: dict) -> str:
    lines = [
        "# Risk-coverage: `--min-confidence`",
        "",
        f"Regenerate: `{result['command']}` ({result['machine']}).",
        "",
        "A face is answered when its top probability is at least C, else labelled `uncertain`.",
        "Coverage = share of the images answered; accuracy = on the answered ones. Protocol: C is",
        "chosen on FERPlus Valid through the CLI (the largest C answering 90 % of Valid), then",
        "Test is run once through the CLI with `--min-confidence C`. C chosen on Test itself is",
        "optimistic and shown for reference only.",
        "",
        "## Through the CLI (FERPlus, 192 px tight crops in a folder)",
        "",
        "| model | C (Valid, 90 %) | Test coverage at C | Test accuracy at C | Test accuracy, all |"
        " C for 90 % of Test | accuracy at it |",
        "|---|---|---|---|---|---|---|",
    ]
    for tier in result["models"]:
        v, t = tier["cli"]["valid"], tier["cli"]["test"]
        lines.append(
            f"| {tier['card']} | {v['C_90']:.5f} | {_pct(t['at_valid_C']['coverage'])} | "
            f"{_pct(t['at_valid_C']['accuracy'])} | {_pct(t['all_faces']['accuracy'])} "
            f"(coverage {_pct(t['all_faces']['coverage'])}) | {t['C_90_on_test']:.5f} | "
            f"{_pct(t['at_C_90_on_test']['accuracy'])} |"
        )
    lines += [
        "",
        "## Robustness shifts (FERPlus Test, `benchmarks/robustness.py`)",
        "",
        "Per shift: accuracy on all faces; C answering 90 % and the accuracy at 90 % coverage;",
        "coverage and accuracy with each model's Valid C (the C a user would set).",
        "",
    ]
    for tier in result["models"]:
        c = tier["cli"]["valid"]["C_90"]
        lines += [
            f"### {tier['card']} (Valid C = {c:.5f})",
            "",
            "| shift | accuracy, all | C for 90 % | accuracy at 90 % | coverage at Valid C |"
            " accuracy at Valid C |",
            "|---|---|---|---|---|---|",
        ]
        for name, row in tier["shifts"].items():
            c90 = "-" if row["C_90"] is None else f"{row['C_90']:.5f}"
            found = row["all_faces"]["coverage"]
            found_note = "" if found == 1 else f" (found {_pct(found)})"
            lines.append(
                f"| {name} | {_pct(row['all_faces']['accuracy'])}{found_note} | {c90} | "
                f"{_pct(row['at_C_90']['accuracy'])} | {_pct(row['at_valid_C']['coverage'])} | "
                f"{_pct(row['at_valid_C']['accuracy'])} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tiers = result["models"]
    fig, axes = plt.subplots(
        1, len(tiers), figsize=(6.5 * len(tiers), 6.0), sharey=True, layout="constrained"
    )
    axes = np.atleast_1d(axes)
    cmap = matplotlib.colormaps["tab20"]
    for ax, tier in zip(axes, tiers, strict=True):
        for i, (name, row) in enumerate(tier["shifts"].items()):
            cov, acc = np.array(row["curve"]).T
            style = {"linewidth": 1.0, "alpha": 0.8, "color": cmap(i % 20)}
            ax.plot(100 * cov, 100 * acc, label=f"shift: {name}", **style)
        cov, acc = np.array(tier["cli"]["test"]["curve"]).T
        ax.plot(100 * cov, 100 * acc, color="black", linewidth=2.4, label="CLI, FERPlus Test")
        at_c = tier["cli"]["test"]["at_valid_C"]
        ax.plot(100 * at_c["coverage"], 100 * at_c["accuracy"], "o", color="black")
        c = tier["cli"]["valid"]["C_90"]
        ax.annotate(f"C={c:.3f} (Valid)", (100 * at_c["coverage"], 100 * at_c["accuracy"]),
                    textcoords="offset points", xytext=(6, -14))  # fmt: skip
        ax.axvline(100 * TARGET, color="grey", linestyle="--", linewidth=1)
        ax.set_xlim(101, 9)
        ax.set_xlabel("coverage: faces answered (%)")
        ax.set_title(f"{tier['card']}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy on the answered faces (%)")
    handles, names = axes[-1].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=4, fontsize=8)
    fig.suptitle("Risk-coverage of --min-confidence C (FERPlus Test)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--valid-folder", type=Path, default=ROOT / ".cache/tight_ferplus_valid")
    parser.add_argument("--test-folder", type=Path, default=ROOT / ".cache/tight_ferplus_test")
    parser.add_argument("--machine", default="2 cores, shared with other jobs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    items = read_items("ferplus", DEFAULT_DATA_ROOT, "test")
    packed = pack(items, cache_dir=DEFAULT_CACHE_DIR)
    faces, labels, classes = packed.images, np.asarray(packed.labels), tuple(packed.classes)
    folders = {"valid": args.valid_folder, "test": args.test_folder}
    tiers = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            console.rule(f"{model}: CLI on Valid, then Test with the Valid C")
            cli = cli_part(model, folders, Path(tmp))
            console.print(
                f"C (Valid, 90 %) = {cli['valid']['C_90']}: Test {cli['test']['at_valid_C']}"
            )
            shifts = shift_part(model, faces, labels, classes, cli["valid"]["C_90"])
            tiers.append({"model": str(model), "card": read_onnx_card(model).name, "cli": cli,
                          "shifts": shifts})  # fmt: skip
    command = "python benchmarks/risk_coverage.py " + " ".join(str(m) for m in args.models)
    result = {"command": command, "machine": args.machine, "target_coverage": TARGET,
              "models": tiers}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "risk_coverage.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "risk_coverage.md").write_text(render(result))
    plot(result, args.out / "risk_coverage.png")
    print(render(result))


if __name__ == "__main__":
    main()
