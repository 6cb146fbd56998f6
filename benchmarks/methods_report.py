"""The paper-methods accuracy tables, rebuilt from finished runs' saved outputs.

``python benchmarks/methods_report.py [--runs runs]`` writes ``benchmarks/results/methods.md``,
``methods.json`` and ``methods.png`` (FERPlus test accuracy per row, and accuracy against
injected label noise). Every row comes from ``fer-train methods train`` under one reduced CPU
protocol (see ``PROTOCOL``); a row whose run is missing is printed as ``not run``. The paper
numbers beside the rows are the papers' own protocols (other datasets, backbones, metrics): they
are references, not like-for-like targets.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from realtime.errors import ConfigError  # noqa: E402
from trainer.methods.run_outputs import load_outputs, merged_scores, score  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PROTOCOL = (
    "Reduced CPU protocol (no GPU was lent): ImageNet MobileNetV2, 64 px gray, first 12,000 "
    "FERPlus Train images, majority labels, 4 epochs AdamW (lr 1e-3, warm-up + cosine), "
    "batch 128, the project's augmentation, flip-TTA; best epoch on all 3,191 Valid images; "
    "reported on all 3,137 Test images. Command per row: `fer-train methods train --name NAME "
    "--method M [--opt k=v] [--loss L] [--noise R] --max-train 12000 --epochs 4`."
)

ISSUE6 = "Seeds 002 and 004: ABAW4 recipe, SCL + CUEM + ARM, ensembles (issue 6)"
# (label, run name, inference mode or None for the run's primary mode, paper reference)
TABLES: dict[str, list[tuple[str, str, str | None, str]]] = {
    "Seed 000: MRE, GUS, mixed loss (issue 4)": [
        ("baseline (CE)", "red4_baseline", None, "ResNet-50 baseline: val macro-F1 48.65"),
        ("+MRE, high head (H)", "red4_mre", "H", "MRE: 62.82"),
        ("+MRE, H+M", "red4_mre", "H+M", ""),
        ("+GUS (isolated, per image)", "red4_gus", "isolated", "GUS: 80.95"),
        ("+GUS, batch graph (transductive)", "red4_gus", "batch", ""),
        ("+GUS +mixed loss (isolated)", "red4_gus_mixed", "isolated", "GUS used focal+SR"),
    ],
    "Seeds 001 and 003: EAN and ULC-AG, clean labels (issue 5)": [
        ("baseline (CE)", "red4_baseline", None, "ULC-AG Table I ResNet-18 RAF-DB: 85.82"),
        ("EAN (isolated, per image)", "red4_ean", "isolated", "EAN FERPlus: 90.07"),
        ("EAN, batch graph (transductive)", "red4_ean", "batch", ""),
        (
            "EAN + invariant feature generator (perturbation-domain adversary)",
            "red4_ean_pda",
            "isolated",
            "ResNet-18 FERPlus basic 77.6 -> 82.4 (other protocol)",
        ),
        ("ULC-AG (spec relabel rule)", "red4_ulc", None, "ULC-AG RAF-DB: 89.31"),
        ("ULC-AG, relabel only where the classifier agrees", "red4_ulcg", None, ""),
    ],
    ISSUE6: [
        ("baseline (CE)", "red4_baseline", None, "ABAW4 ViT baseline: LSD val F1 53.32"),
        (
            "ABAW4 recipe: LS 0.2 + weighted CE + RandAugment up-sampling",
            "red4_abaw",
            None,
            "ABAW4 ResNet all modules: 61.93 (LSD val F1)",
        ),
        ("SCL + CUEM + ARM (isolated, ARM running mean)", "red4_scl", "isolated", "FERPlus 88.56"),
        ("SCL + CUEM + ARM, batch (transductive)", "red4_scl", "batch", ""),
        (
            "SCL + ARM, CUEM off (isolated)",
            "red4_scl_nocuem",
            "isolated",
            "AffectNet: +SCL 60.44 vs both 60.94",
        ),
        (
            "reference: shipped default, full data, 18 epochs, soft labels",
            "shipped_default",
            None,
            "-",
        ),
    ],
}
# Ensembles written by `fer-train methods ensemble ... --out FILE`: (title, label, file)
ENSEMBLES = [
    (
        ISSUE6,
        "ensemble of the paper-method runs, weights tuned on Valid accuracy",
        "ensemble_paper_methods.json",
    ),
    (
        ISSUE6,
        "ensemble of all runs and three full-data models, tuned on Valid accuracy "
        "(selected on Valid)",
        "ensemble.json",
    ),
    (ISSUE6, "same members, tuned on Valid NLL", "ensemble_all_nll.json"),
    (
        ISSUE6,
        "three full-data MobileNetV2 models, tuned on Valid NLL (the distillation teacher)",
        "ensemble_full_models.json",
    ),
]
# Merges: (label, {member: (run, mode)}, weights, paper reference)
MERGES: list[tuple[str, str, dict[str, tuple[str, str | None]], Any, str]] = [
    (
        "Seed 000: MRE, GUS, mixed loss (issue 4)",
        "merged S1 (gus .6, mre .2, baseline .2 in DMUE's place)",
        {
            "gus": ("red4_gus_mixed", "isolated"),
            "mre": ("red4_mre", "H+M"),
            "dmue": ("red4_baseline", None),
        },  # fmt: skip
        "S1",
        "Ensembled: 83.57 / Corrected: 84.82",
    ),
]
NOISE_METHODS = {
    "baseline": "red4_baseline", "ean": "red4_ean", "ulc": "red4_ulc",
    "ulc (relabel off)": "red4_ulc_norel",
    "ulc (classifier-agreed relabels)": "red4_ulcg",
}  # fmt: skip
NOISE_LEVELS = (0, 10, 20, 30)
NOISE_PAPER = {
    "baseline": "ResNet-18, RAF-DB (ULC-AG Table III): -/80.63/78.06/75.13",
    "ean": "FERPlus: 90.07/87.15/87.03/-",
    "ulc": "RAF-DB: 89.31 clean (Table I), 83.21/81.16/79.01",
    "ulc (relabel off)": "-",
    "ulc (classifier-agreed relabels)": "-",
}
CORRECT_THRESHOLD = 0.93


def _row(runs: Path, run: str, mode: str | None) -> dict[str, Any]:
    try:
        out = load_outputs(runs / run, "test", mode)
        valid = load_outputs(runs / run, "valid", mode)
    except (ConfigError, FileNotFoundError):
        return {"run": run, "mode": mode, "status": "not run"}
    result = json.loads((runs / run / "result.json").read_text())
    return {
        "run": run, "mode": mode or result["primary_mode"], "status": "ok",
        "valid": score(valid.probs.argmax(1), valid.labels),
        "test": score(out.probs.argmax(1), out.labels),
        "relabel": result.get("labels", {}), "train_img_per_s": result.get("train_img_per_s"),
    }  # fmt: skip


def _merge(runs: Path, members: dict[str, tuple[str, str | None]], weights: Any) -> dict:
    try:
        outs = {k: load_outputs(runs / r, "test", m) for k, (r, m) in members.items()}
    except (ConfigError, FileNotFoundError):
        return {"status": "not run"}
    return {"status": "ok", **merged_scores(outs, weights, CORRECT_THRESHOLD)}


def _ensemble_row(label: str, path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"label": label, "paper": "EAN 90.07 (target)", "status": "not run"}
    record = json.loads(path.read_text())
    used = [m for m in record["members"] if m["weight"] >= 0.005]
    members = ", ".join(f"{m['name']} {m['weight']:.2f}" for m in used)
    tuned = record["tuned"]
    return {
        "label": f"{label} ({members})", "paper": "EAN 90.07 (target)", "status": "ok",
        "run": path.name, "transductive": record.get("transductive", False),
        "valid": {"acc": round(100 * tuned["valid_acc"], 2), "macro_f1": float("nan")},
        "test": {"acc": round(100 * tuned["test_acc"], 2), "macro_f1": float("nan")},
    }  # fmt: skip


def collect(runs: Path) -> dict[str, Any]:
    """Every table's rows as data."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for title, rows in TABLES.items():
        tables[title] = [
            {"label": label, "paper": paper, **_row(runs, run, mode)}
            for label, run, mode, paper in rows
        ]
    for title, label, members, weights, paper in MERGES:
        merged = _merge(runs, members, weights)
        for kind in ("merged", "corrected"):
            row = {"label": f"{label}, {kind}", "paper": paper, "status": merged["status"]}
            if merged["status"] == "ok":
                row["test"] = merged[kind]
                row["transductive"] = kind == "corrected"
            tables.setdefault(title, []).append(row)
    for title, label, name in ENSEMBLES:
        tables.setdefault(title, []).append(_ensemble_row(label, RESULTS / name))
    noise = {
        method: {
            level: _row(runs, run if level == 0 else f"{run}_n{level}", None)
            for level in NOISE_LEVELS
        }
        for method, run in NOISE_METHODS.items()
    }
    return {"protocol": PROTOCOL, "tables": tables, "noise": noise}


def _fmt(row: dict[str, Any], split: str = "test") -> str:
    if row.get("status") != "ok":
        return "not run"
    f1 = row[split]["macro_f1"]
    return f"{row[split]['acc']:.2f} / " + ("-" if f1 != f1 else f"{f1:.2f}")


def to_markdown(data: dict[str, Any]) -> str:
    """The tables as Markdown."""
    lines = ["# Paper methods on FERPlus", "", data["protocol"], ""]
    lines += ["Cells: accuracy / macro-F1 (%). Transductive rows use the whole test set.", ""]
    for title, rows in data["tables"].items():
        lines += [f"## {title}", "", "| row | run | valid | test | paper (own protocol) |"]
        lines += ["|---|---|---|---|---|"]
        for row in rows:
            valid = _fmt(row, "valid") if "valid" in row else "-"
            run = f"{row.get('run', '-')} {row.get('mode') or ''}".strip()
            lines.append(f"| {row['label']} | {run} | {valid} | {_fmt(row)} | {row['paper']} |")
        lines.append("")
    lines += ["## Label noise (issue 5): test accuracy / macro-F1 by flipped fraction", ""]
    head = " | ".join(f"{level}%" for level in NOISE_LEVELS)
    lines += [f"| method | {head} | relabel repaired / broken at 20% | paper |"]
    lines += ["|---|" + "---|" * (len(NOISE_LEVELS) + 2)]
    for method, cells in data["noise"].items():
        rel = cells[20].get("relabel", {})
        fix = f"{rel.get('repaired', 0)} / {rel.get('broken', 0)}" if rel.get("relabeled") else "-"
        values = " | ".join(_fmt(cells[level]) for level in NOISE_LEVELS)
        lines.append(f"| {method} | {values} | {fix} | {NOISE_PAPER[method]} |")
    return "\n".join(lines) + "\n"


def plot(data: dict[str, Any], path: Path) -> Path:
    """Bars of test accuracy per row, and accuracy against noise per method."""
    fig, (bars, noise) = plt.subplots(1, 2, figsize=(14, 5.5))
    rows = [r for rows in data["tables"].values() for r in rows if r.get("status") == "ok"]
    bars.barh([r["label"][:48] for r in rows], [r["test"]["acc"] for r in rows], color="tab:blue")
    if rows:
        low = min(r["test"]["acc"] for r in rows)
        bars.set_xlim(low - 3, max(r["test"]["acc"] for r in rows) + 1)
    bars.invert_yaxis()
    bars.set_xlabel("FERPlus test accuracy (%)")
    bars.tick_params(axis="y", labelsize=7)
    for method, cells in data["noise"].items():
        pts = [(lv, c["test"]["acc"]) for lv, c in cells.items() if c.get("status") == "ok"]
        if pts:
            noise.plot(*zip(*pts, strict=True), marker="o", label=method)
    noise.set_xlabel("flipped training labels (%)")
    noise.set_ylabel("FERPlus test accuracy (%)")
    if noise.lines:
        noise.legend()
    noise.grid(alpha=0.3)
    fig.suptitle("Paper methods, reduced CPU protocol")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    data = collect(args.runs)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "methods.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    (args.out / "methods.md").write_text(to_markdown(data))
    plot(data, args.out / "methods.png")
    print(f"wrote {args.out / 'methods.md'}, methods.json, methods.png")


if __name__ == "__main__":
    main()
