"""The paper-methods table at full scale, rebuilt from the kept result files of finished runs.

``python benchmarks/methods_report.py`` writes ``benchmarks/results/methods.{md,json,png}``.
Every row is one ``fer-train methods train`` run under ``PROTOCOL`` (full FERPlus Train), kept
with ``fer-train methods keep`` in ``benchmarks/results/methods_runs/<run>/`` (result.json and
the per-split probabilities; no checkpoints). Runs are named ``full_<row>_s<seed>``; a row whose
run is not kept yet reads ``not run`` and shows the command that makes it. The baseline row is
the mean ± sample standard deviation over its seeds; every other row says how far it is from
that mean in baseline standard deviations, and a method ``helps`` only beyond 2 of them. The
earlier reduced-protocol table is ``methods_reduced.md`` (its runs were not kept).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fer_live.errors import ConfigError  # noqa: E402
from fer_live.trainer.methods.ensemble_tune import load_members, tune_ensemble  # noqa: E402
from fer_live.trainer.methods.run_outputs import load_outputs, merged_scores, score  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
KEPT = RESULTS / "methods_runs"
EPOCHS = 18
PROTOCOL = (
    "Full-scale CPU protocol (no GPU was lent): ImageNet MobileNetV2, 64 px gray (the fast "
    "default's architecture), all 25,045 FERPlus Train images (majority protocol), majority "
    f"labels, {EPOCHS} epochs (the default's count) AdamW (lr 1e-3, weight decay 0.05, half an "
    "epoch of warm-up then cosine), batch 128, the project's augmentation, no weight EMA; best "
    "epoch on all 3,191 Valid images, flip-TTA; reported once on all 3,137 Test images. One "
    "torch thread per run, two runs at a time on a 2-core x86_64 CPU (full_ulc_s0: alone, two "
    "threads; full_ulcg_s0: two threads, beside another run for its first 25 min; "
    "full_ean_pda_s0: one thread beside another run for 9 epochs, then resumed on two threads "
    "alone; full_baseline_n20_s0: two threads, at low priority beside another run for its "
    "first epoch). Only full-scale runs appear here."
)
SPEC_ABAW_WEIGHTS = "1,1,1,1,1,3,5,3"  # spec [1,3,5,1,1,1] in FERPlus order; contempt as disgust
TEMPERED_ABAW_WEIGHTS = "1,1,1,1,1,1.73,2.24,1.73"  # the spec's weights to the power 0.5


@dataclass(frozen=True)
class Row:
    """One table row: a method run (its own seed runs) read in one inference mode."""

    label: str
    key: str
    method: str
    args: tuple[str, ...] = ()
    mode: str | None = None
    paper: str = ""
    noise: int = 0
    embeddings: bool = False  # keep them: correcting reads this run's embeddings

    def run(self, seed: int, prefix: str = "full") -> str:
        noise = f"_n{self.noise}" if self.noise else ""
        return f"{prefix}_{self.key}{noise}_s{seed}"

    def command(self, seed: int) -> str:
        noise = f" --noise {self.noise / 100:g}" if self.noise else ""
        extra = " ".join(self.args)
        return (
            f"fer-train methods train --name {self.run(seed)} --method {self.method}"
            f"{' ' + extra if extra else ''}{noise} --epochs {EPOCHS} --seed {seed} --threads 1"
            f" && fer-train methods keep {self.run(seed)}"
            + (" --embeddings" if self.embeddings else "")
        )


BASELINE = Row("baseline (CE)", "baseline", "baseline", paper="-")
ROWS: list[Row] = [
    BASELINE,
    Row("MRE, high head (H)", "mre", "mre", mode="H", paper="MRE: 62.82 (val macro-F1)"),
    Row("MRE, H+M", "mre", "mre", mode="H+M"),
    Row("GUS (isolated, per image)", "gus", "gus", mode="isolated", paper="GUS: 80.95"),
    Row("GUS, batch graph (transductive)", "gus", "gus", mode="batch"),
    Row(
        "GUS + mixed loss (isolated)",
        "gus_mixed",
        "gus",
        ("--loss", "recommended"),
        "isolated",
        embeddings=True,
    ),  # fmt: skip
    Row("EAN (isolated)", "ean", "ean", mode="isolated", paper="EAN FERPlus: 90.07"),
    Row(
        "EAN + invariant feature generator",
        "ean_pda",
        "ean",
        ("--opt", "ifg=pda"),
        "isolated",
        "ResNet-18 FERPlus 77.6 -> 82.4 (other protocol)",
    ),  # fmt: skip
    Row("ULC-AG (spec relabel rule)", "ulc", "ulc", paper="ULC-AG RAF-DB: 89.31"),
    Row("ULC-AG, classifier-agreement guard", "ulcg", "ulc", ("--opt", "relabel_agree=true")),
    Row(
        "ABAW4 recipe, spec class weights",
        "abaw",
        "abaw",
        ("--opt", f"weights={SPEC_ABAW_WEIGHTS}"),
        paper="ABAW4: 61.93 (LSD val F1)",
    ),  # fmt: skip
    Row(
        "ABAW4 recipe, tempered class weights",
        "abaw_tempered",
        "abaw",
        ("--opt", f"weights={TEMPERED_ABAW_WEIGHTS}"),
    ),  # fmt: skip
    Row(
        "ABAW4 recipe + deviation fine-tuning",
        "abaw_dft",
        "abaw",
        ("--opt", f"weights={SPEC_ABAW_WEIGHTS}", "--opt", "dft=true"),
    ),  # fmt: skip
    Row("SCL + ARM (CUEM off)", "scl_nocuem", "scl", ("--opt", "cuem=false"), "isolated"),
    Row(
        "SCL + CUEM + ARM, CUEM after a 5-epoch warm-up",
        "scl",
        "scl",
        ("--opt", "cuem_start=5"),
        "isolated",
        "SCL+CUEM+ARM FERPlus: 88.56",
    ),  # fmt: skip
]
NOISE_ROWS: list[Row] = [
    Row(f"{name} at {level} % flipped labels", key, method, args, mode, noise=level)
    for level in (20, 10, 30)
    for name, key, method, args, mode in (
        ("baseline", "baseline", "baseline", (), None),
        ("EAN", "ean", "ean", (), "isolated"),
        ("ULC-AG", "ulc", "ulc", (), None),
    )
]
# Merging and correcting (METHODS.md §4) over trained members: S1 weights, GUS .6, MRE .2,
# baseline .2 in DMUE's place; correcting reads the first member's kept embeddings.
MERGE_MEMBERS = {
    "gus": ("gus_mixed", "isolated"),
    "mre": ("mre", "H+M"),
    "dmue": ("baseline", None),
}
CORRECT_THRESHOLD = 0.93
# Shipped model files scored as runs (`fer-train methods score-model`): ensemble members only.
TIERS = "tier_*"
# Rows trained on a GPU machine (benchmarks/gpu_methods.py: the same protocol, runs named
# gpu_<row>_s<seed>) go in a table of their own, against the GPU baseline's own seeds.
GPU = "gpu"
GPU_ROWS: list[Row] = [
    Row("baseline, ResNet-18 112 px from scratch, 40 epochs", "resnet18_112", "baseline",
        ("--arch", "resnet18", "--input-size", "112")),
]  # fmt: skip
GPU_PROTOCOL = (
    "Trained on the GPU machine (`benchmarks/gpu_run.sh train`, device and versions in each "
    "run's log): the protocol above, several runs sharing one GPU; Δ against the GPU baseline's "
    "seeds."
)
SEEDS = (0, 1, 2)
NOISY_RUN = re.compile(r"_n\d+_s\d+$")


def _seed_runs(row: Row, kept: Path, prefix: str = "full") -> list[dict[str, Any]]:
    """Every kept seed run of ``row``: its Valid/Test scores, speed and relabel counts."""
    out = []
    for seed in SEEDS:
        run = kept / row.run(seed, prefix)
        try:
            valid, test = load_outputs(run, "valid", row.mode), load_outputs(run, "test", row.mode)
        except (ConfigError, FileNotFoundError):
            continue
        result = json.loads((run / "result.json").read_text())
        out.append({
            "seed": seed, "run": run.name, "mode": row.mode or result["primary_mode"],
            "valid": score(valid.probs.argmax(1), valid.labels),
            "test": score(test.probs.argmax(1), test.labels),
            "train_img_per_s": result.get("train_img_per_s"),
            "train_min": round(result.get("train_s", 0.0) / 60, 1),
            "best_epoch": result.get("best_epoch"), "labels": result.get("labels", {}),
        })  # fmt: skip
    return out


def _spread(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(
    row: Row, kept: Path, base: dict[str, Any] | None, prefix: str = "full"
) -> dict[str, Any]:
    """A row's seeds, their mean and sd, and its distance from the baseline mean."""
    seeds = _seed_runs(row, kept, prefix)
    command = (
        row.command(0) if prefix == "full" else f"benchmarks/gpu_methods.py {row.run(0, prefix)}"
    )
    record: dict[str, Any] = {
        "label": row.label, "paper": row.paper, "seeds": seeds,
        "command": command, "status": "ok" if seeds else "not run",
    }  # fmt: skip
    if not seeds:
        return record
    for split in ("valid", "test"):
        for metric in ("acc", "macro_f1"):
            mean, sd = _spread([s[split][metric] for s in seeds])
            record[f"{split}_{metric}"] = {"mean": round(mean, 2), "sd": round(sd, 2)}
    if base and base.get("status") == "ok" and row is not BASELINE:
        delta = record["test_acc"]["mean"] - base["test_acc"]["mean"]
        sd = base["test_acc"]["sd"]
        record["delta_test_acc"] = round(delta, 2)
        record["delta_in_sd"] = round(delta / sd, 2) if sd > 0 else None
        record["helps"] = bool(sd > 0 and len(base["seeds"]) >= 3 and delta > 2 * sd)
    return record


def _merge(kept: Path) -> dict[str, Any]:
    try:
        members = {
            name: load_outputs(kept / Row("", key, "").run(0), "test", mode)
            for name, (key, mode) in MERGE_MEMBERS.items()
        }
        return {"status": "ok", **merged_scores(members, "S1", CORRECT_THRESHOLD)}
    except (ConfigError, FileNotFoundError):
        runs = ", ".join(Row("", key, "").run(0) for key, _ in MERGE_MEMBERS.values())
        return {"status": "not run", "why": f"needs the kept runs {runs}"}


def _ensemble(name: str, runs: list[Path]) -> dict[str, Any]:
    """Uniform and Valid-tuned (NLL) merges of ``runs``' primary modes, scored on Test once."""
    if len(runs) < 2:
        return {"name": name, "status": "not run", "why": "needs 2 or more kept runs"}
    tuned = tune_ensemble(load_members(runs), "nll")
    members = [
        {"run": Path(m["run_dir"]).name, "mode": m["mode"], "weight": round(m["weight"], 3)}
        for m in tuned["members"]
    ]
    scores = {
        kind: {key: round(100 * tuned[kind][key], 2) for key in ("valid_acc", "test_acc")}
        for kind in ("uniform", "tuned")
    }
    return {"name": name, "status": "ok", "members": members, **scores}


def _ensembles(kept: Path) -> list[dict[str, Any]]:
    """The baseline's seeds together, against one seed-0 run of every method (diverse), and
    those with the shipped model files scored as runs (``tier_*``: the accurate tier)."""
    clean = sorted(run for run in kept.glob("full_*_s[0-9]") if not NOISY_RUN.search(run.name))
    per_method = [r for r in clean if r.name.endswith("_s0")]
    return [
        _ensemble("baseline seeds", [r for r in clean if r.name.startswith("full_baseline_s")]),
        _ensemble("one run per method (seed 0)", per_method),
        _ensemble("one run per method + the accurate tier", per_method + sorted(kept.glob(TIERS))),
    ]


def collect(kept: Path) -> dict[str, Any]:
    """Every row as data."""
    base = summarise(BASELINE, kept, None)
    rows = [base] + [summarise(r, kept, base) for r in ROWS[1:]]
    noise = [summarise(r, kept, None) for r in NOISE_ROWS]
    data = {
        "protocol": PROTOCOL, "rows": rows, "noise": noise, "merge": _merge(kept),
        "ensembles": _ensembles(kept),
    }  # fmt: skip
    if any(kept.glob(f"{GPU}_*_s[0-9]")):
        gpu_base = summarise(BASELINE, kept, None, GPU)
        gpu_rows = [summarise(r, kept, gpu_base, GPU) for r in [*ROWS[1:], *GPU_ROWS]]
        data["gpu"] = {
            "protocol": GPU_PROTOCOL,
            "rows": [r for r in [gpu_base, *gpu_rows] if r["status"] == "ok"],
            "noise": [r for r in (summarise(n, kept, None, GPU) for n in NOISE_ROWS)
                      if r["status"] == "ok"],
        }  # fmt: skip
    return data


def _ensemble_lines(ensembles: list[dict[str, Any]]) -> list[str]:
    lines = [
        "Members' primary (deployable) modes; weights on the simplex tuned on Valid by NLL "
        "(`trainer/methods/ensemble_tune.py`), Test scored once. Accuracy %. `tier_accurate` is "
        "the shipped accurate tier (`weights/fer_accurate.onnx`: two 64 px MobileNetV2s, the "
        "default and a framing-jitter twin, flip views inside), scored as a run by "
        "`fer-train methods score-model weights/fer_accurate.onnx --name tier_accurate`.",
        "",
        "| ensemble | members (weight) | uniform valid / test | tuned valid / test |",
        "|---|---|---|---|",
    ]
    for e in ensembles:
        if e["status"] != "ok":
            lines.append(f"| {e['name']} | not run: {e['why']} | - | - |")
            continue
        members = ", ".join(f"{m['run']} ({m['weight']:.2f})" for m in e["members"])
        u, t = e["uniform"], e["tuned"]
        lines.append(
            f"| {e['name']} | {members} | {u['valid_acc']:.2f} / {u['test_acc']:.2f} | "
            f"{t['valid_acc']:.2f} / {t['test_acc']:.2f} |"
        )
    return lines


def _cell(row: dict[str, Any], split: str) -> str:
    if row["status"] != "ok":
        return "not run"
    acc, f1 = row[f"{split}_acc"], row[f"{split}_macro_f1"]
    if len(row["seeds"]) > 1:
        return f"{acc['mean']:.2f} ± {acc['sd']:.2f} / {f1['mean']:.2f} ± {f1['sd']:.2f}"
    return f"{acc['mean']:.2f} / {f1['mean']:.2f}"


def _delta(row: dict[str, Any]) -> str:
    if "delta_test_acc" not in row:
        return "-"
    sds = f" ({row['delta_in_sd']:+.1f} sd)" if row.get("delta_in_sd") is not None else ""
    return f"{row['delta_test_acc']:+.2f}{sds}" + (" **helps**" if row.get("helps") else "")


def _speed(row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return "-"
    seeds = row["seeds"]
    return f"{seeds[0]['train_img_per_s']} / {sum(s['train_min'] for s in seeds) / len(seeds):.0f}"


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| row | seeds | valid | test | Δ test vs baseline | img/s / train min | paper |"]
    lines.append("|---|---|---|---|---|---|---|")
    for row in rows:
        seeds = ",".join(str(s["seed"]) for s in row["seeds"]) or "-"
        lines.append(
            f"| {row['label']} | {seeds} | {_cell(row, 'valid')} | {_cell(row, 'test')} | "
            f"{_delta(row)} | {_speed(row)} | {row['paper'] or '-'} |"
        )
    return lines


def to_markdown(data: dict[str, Any]) -> str:
    """The report as Markdown."""
    lines = ["# Paper methods on FERPlus, full scale", "", data["protocol"], ""]
    lines += [
        "Cells: accuracy / macro-F1 (%); mean ± sample sd where a row has several seeds. "
        "A method *helps* when its Test accuracy beats the baseline mean by more than 2 baseline "
        "standard deviations (3 baseline seeds needed). Transductive rows use the whole test set.",
        "",
    ]
    lines += _table(data["rows"]) + ["", "## Noisy labels (flipped fraction of Train)", ""]
    lines += _table(data["noise"]) + ["", "## Merging and correcting (S1 weights)", ""]
    merge = data["merge"]
    if merge["status"] == "ok":
        for kind in ("merged", "corrected"):
            lines.append(f"- {kind}: {merge[kind]['acc']:.2f} / {merge[kind]['macro_f1']:.2f}")
        lines.append(f"- correcting changed {merge['corrected_changed']} test predictions")
    else:
        lines.append(f"not run: {merge['why']}")
    if "gpu" in data:
        gpu = data["gpu"]
        lines += ["", "## GPU-trained rows", "", gpu["protocol"], ""] + _table(gpu["rows"])
        if gpu["noise"]:
            lines += ["", "GPU-trained noisy rows:", ""] + _table(gpu["noise"])
    lines += ["", "## Ensembles over kept runs", ""] + _ensemble_lines(data["ensembles"])
    lines += ["", "## Commands (seed 0; other seeds change `_s0` and `--seed`)", ""]
    done = set()
    for row in data["rows"] + data["noise"]:
        if row["command"] not in done:
            done.add(row["command"])
            lines.append(f"- {row['label']}: `{row['command']}`")
    return "\n".join(lines) + "\n"


def plot(data: dict[str, Any], path: Path) -> Path:
    """Test accuracy per row (dots per seed), the baseline's mean ± 2 sd shaded."""
    rows = [r for r in data["rows"] + data["noise"] if r["status"] == "ok"]
    fig, ax = plt.subplots(figsize=(10, 0.45 * max(len(rows), 4) + 1.5))
    for i, row in enumerate(rows):
        accs = [s["test"]["acc"] for s in row["seeds"]]
        ax.scatter(accs, [i] * len(accs), color="tab:blue", zorder=3)
        ax.plot([row["test_acc"]["mean"]] * 2, [i - 0.3, i + 0.3], color="black")
    base = data["rows"][0]
    if base["status"] == "ok":
        mean, sd = base["test_acc"]["mean"], base["test_acc"]["sd"]
        ax.axvspan(mean - 2 * sd, mean + 2 * sd, color="tab:gray", alpha=0.25,
                   label="baseline mean ± 2 sd")  # fmt: skip
        ax.legend(loc="lower right")
    ax.set_yticks(range(len(rows)), [r["label"][:52] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("FERPlus test accuracy (%)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Paper methods, full-scale CPU protocol")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kept", type=Path, default=KEPT, help="Kept runs (methods keep).")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    data = collect(args.kept)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "methods.json").write_text(json.dumps(data, indent=1) + "\n")
    (args.out / "methods.md").write_text(to_markdown(data))
    plot(data, args.out / "methods.png")
    print(f"wrote {args.out / 'methods.md'}, methods.json, methods.png")


if __name__ == "__main__":
    main()
