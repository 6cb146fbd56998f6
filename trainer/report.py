"""The accuracy table: our exported models beside published numbers on the same protocols.

Our rows come from the model cards of exported ONNX files (``metrics`` are written there by
``fer-train export --metrics``); ONNX Runtime CPU latency is measured afresh.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from fer_live.infer.card import read_sidecar
from fer_live.trainer.export import ort_latency_ms, read_onnx_card

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
# Published single-model results on the same protocols (test accuracy, %).
PAPERS_FERPLUS = (
    ("EAN", 90.07),
    ("SCN", 89.35),
    ("RAN", 89.16),
    ("SCL+CUEM", 88.56),
)
PAPERS_FER2013 = (("best single models (literature range)", "~73-74"),)
# GPU reference recipes measured on the project's H100 (``../shared/DEVICE.md``), FERPlus test.
GPU_REFERENCE_FERPLUS = (
    ("project GPU reference: ResNet-18 scratch 112 px, 40-100 ep", "87.4-87.6"),
    ("project GPU reference: ImageNet MobileNetV2 112 px", "87.0-87.8"),
    ("project GPU reference: ResNet-18 64 px", "85.5"),
)


def model_row(onnx_path: Path, latency_runs: int = 200) -> dict[str, Any]:
    """Card facts, metrics and fresh ORT CPU batch-1 latency for one exported model."""
    card = read_sidecar(onnx_path) or read_onnx_card(onnx_path)
    return {
        "model": card.name,
        "file": str(onnx_path),
        "arch": card.arch,
        "input": f"{card.input_size}px x{card.channels}",
        "size_mb": round(onnx_path.stat().st_size / 1e6, 2),
        "ort_cpu_b1_ms": round(ort_latency_ms(onnx_path, card, latency_runs), 3),
        "epochs": card.training.get("epoch") or card.training.get("epochs"),
        "metrics": card.metrics,
    }


def _pct(metrics: dict[str, Any], key: str) -> str:
    value = metrics.get(key)
    return f"{100 * value:.2f}" if isinstance(value, (int, float)) else "-"


def render_markdown(rows: list[dict[str, Any]], threads: int, command: str) -> str:
    """The markdown report for ``rows`` from ``model_row``; ``command`` regenerates it."""
    lines = [
        "# Accuracy report",
        "",
        f"Regenerate: `{command}`.",
        "FERPlus: 8-class majority protocol (single votes dropped, unknown/NF majorities dropped;",
        "25,045 / 3,191 / 3,137 images), test = FER2013Test, selection on Valid only.",
        "FER2013: 7-class original labels, PublicTest / PrivateTest.",
        f"Latency: ONNX Runtime CPU, batch 1, median, default threads on {threads} cores, "
        f"{platform.processor() or platform.machine()}.",
        "",
        "## Our models (CPU-trained)",
        "",
        "| model | arch | input | valid | FERPlus test | macro-F1 | FER2013 public | "
        "FER2013 private | ORT CPU b1 ms | MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        m = row["metrics"]
        lines.append(
            f"| {row['model']} | {row['arch']} | {row['input']} | {_pct(m, 'valid_acc')} | "
            f"{_pct(m, 'ferplus_test_acc')} | {_pct(m, 'ferplus_test_macro_f1')} | "
            f"{_pct(m, 'fer2013_public_acc')} | {_pct(m, 'fer2013_private_acc')} | "
            f"{row['ort_cpu_b1_ms']} | {row['size_mb']} |"
        )
    lines += [
        "",
        "Figures in this first table come from each card: `fer-train eval` (flip TTA, plain "
        "argmax) for single models, ONNX Runtime with the decision rule for ensembles (their "
        "mirror-image TTA is inside the graph). The tables below put every model on one footing.",
    ]
    lines += _decision_section(rows) + _folder_section(rows)
    lines += [
        "",
        "FER2013 columns of a FERPlus-trained model score its logits against the original 7-class",
        "labels (contempt left out of the argmax). The FERPlus labels were made on the same",
        "Training images, so this is a cross-label reference, not the FER2013 training protocol.",
        "",
        "## Published results and the project's GPU reference recipes, same protocols (test %)",
        "",
    ]
    lines += ["| method | FERPlus test |", "|---|---|"]
    lines += [f"| {name} | {acc:.2f} |" for name, acc in PAPERS_FERPLUS]
    lines += [f"| {name} | {acc} |" for name, acc in GPU_REFERENCE_FERPLUS]
    lines += ["", "| method | FER2013 PrivateTest |", "|---|---|"]
    lines += [f"| {name} | {acc} |" for name, acc in PAPERS_FER2013]
    return "\n".join(lines) + "\n"


def _decision_section(rows: list[dict[str, Any]]) -> list[str]:
    """Test figures with the card's decision rule off / temperature only / on."""
    found = [(row, _result(row, "decision")) for row in rows]
    found = [(row, data) for row, data in found if data]
    if not found:
        return []
    labels = list(found[0][1]["test"]["off"]["recall"])
    lines = [
        "",
        "## Decision rule (FERPlus Test, no TTA, as the product runs)",
        "",
        "Temperature fit on Valid by NLL; class offsets = a prior correction "
        "(-alpha log train prior) with alpha chosen on Valid for macro-F1 within 0.5 points of "
        "Valid accuracy (`fer-train calibrate`).",
        "",
        "| model | rule | acc | macro-F1 | balanced acc | ECE | "
        + " | ".join(f"recall {label}" for label in labels)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(labels),
    ]
    for row, data in found:
        for rule, m in data["test"].items():
            recalls = " | ".join(f"{100 * m['recall'][label]:.1f}" for label in labels)
            lines.append(
                f"| {row['model']} | {rule} | {100 * m['accuracy']:.2f} | "
                f"{100 * m['macro_f1']:.2f} | {100 * m['balanced_accuracy']:.2f} | "
                f"{m['ece']:.3f} | {recalls} |"
            )
    return lines


def _folder_section(rows: list[dict[str, Any]]) -> list[str]:
    """The tight-crop folder check through the CLI (``benchmarks/folder_check.py``)."""
    found = [(row, _result(row, "folder_check")) for row in rows]
    found = [(row, data) for row, data in found if data]
    if not found:
        return []
    lines = [
        "",
        "## Tight-crop folder through the CLI (`benchmarks/folder_check.py`)",
        "",
        "FERPlus Test upscaled to 192 px (cubic, no border), `fer-live -s FOLDER --jsonl ...`,",
        "default flags (decision rule on); best-scoring face per image; no face = wrong.",
        "",
        "| model | face found | acc | macro-F1 | balanced acc | by box source (images: acc) |",
        "|---|---|---|---|---|---|",
    ]
    for row, d in found:
        sources = ", ".join(
            f"{k} {v['images']}: {100 * v['accuracy']:.1f}" for k, v in d["by_box_source"].items()
        )
        lines.append(
            f"| {row['model']} | {100 * d['face_found']:.1f} | {100 * d['accuracy']:.2f} | "
            f"{100 * d['macro_f1']:.2f} | {100 * d['balanced_accuracy']:.2f} | {sources} |"
        )
    return lines


def _result(row: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """``benchmarks/results/<kind>_<model file stem>.json`` if it exists."""
    path = RESULTS / f"{kind}_{Path(row['file']).stem}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def write_report(models: list[Path], out_dir: Path, latency_runs: int = 200) -> tuple[Path, Path]:
    """Write ``accuracy.md`` and ``accuracy.json`` for the given ONNX files.

    Args:
        models: Exported ``.onnx`` files; empty means the shipped default model.
        out_dir: Output folder (``benchmarks/results``).
        latency_runs: Timed runs per model.

    Returns:
        The markdown and JSON paths.
    """
    if not models:
        from fer_live.infer.assets import default_model_path

        models = [default_model_path()]
    rows = [model_row(Path(p), latency_runs) for p in models]
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, json_path = out_dir / "accuracy.md", out_dir / "accuracy.json"
    threads = os.cpu_count() or 1
    command = " ".join(["python benchmarks/accuracy_report.py", *(str(p) for p in models)])
    md_path.write_text(render_markdown(rows, threads, command))
    payload = {
        "models": rows,
        "papers_ferplus_test": dict(PAPERS_FERPLUS),
        "papers_fer2013_private": dict(PAPERS_FER2013),
        "gpu_reference_ferplus_test": dict(GPU_REFERENCE_FERPLUS),
        "cpu": platform.processor() or platform.machine(),
        "command": command,
    }
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    return md_path, json_path
