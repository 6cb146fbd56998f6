"""``fer-train``: train, evaluate, export and report FER models."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from fer_live.errors import FerLiveError
from fer_live.trainer.config import DEFAULT_DATA_ROOT, TrainConfig
from fer_live.trainer.methods.cli import methods_app

app = typer.Typer(add_completion=False, help="Train, evaluate and export FER models.")
app.add_typer(methods_app, name="methods")
console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Train, evaluate and export FER models."""


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


@app.command()
def train(
    name: str = typer.Option("fer_mobilenetv2_64", help="Run name (runs/<name>)."),
    arch: str = typer.Option("mobilenetv2", help="Registry model name."),
    dataset: str = typer.Option("ferplus", help="ferplus, fer2013 or an image-folder path."),
    data_root: Path = typer.Option(DEFAULT_DATA_ROOT, help="FERPlus root folder."),
    pretrained: str | None = typer.Option(
        None, help="Weights file; 'imagenet' uses the shared ImageNet file for the arch."
    ),
    init: str | None = typer.Option(None, help="fer-train checkpoint to fine-tune from."),
    input_size: int = typer.Option(64),
    channels: int = typer.Option(1),
    epochs: int = typer.Option(30),
    batch_size: int = typer.Option(128),
    lr: float = typer.Option(1e-3),
    weight_decay: float = typer.Option(0.05),
    warmup_epochs: float = typer.Option(1.0),
    drop_rate: float = typer.Option(0.2),
    ema_decay: float = typer.Option(0.0, help="Weight EMA decay per step (0 = off)."),
    soft_targets: bool = typer.Option(True, help="Soft vote targets (FERPlus) or hard labels."),
    label_smoothing: float = typer.Option(0.0),
    seed: int = typer.Option(0),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    num_threads: int = typer.Option(0, help="torch CPU threads (0 = default)."),
    max_train: int = typer.Option(0, help="Use only N training images (smoke runs)."),
    max_eval: int = typer.Option(0, help="Use only N validation images."),
    out_dir: str = typer.Option("runs"),
    model_kwargs: str = typer.Option("{}", help="JSON model options, e.g. '{\"stem_stride\": 1}'."),
    config: Path | None = typer.Option(None, help="config.json to start from (flags ignored)."),
    resume: bool = typer.Option(False, help="Continue runs/<name>/last.pt."),
    verbose: bool = typer.Option(False),
) -> None:
    """Train a model; the resolved config is saved to runs/<name>/config.json."""
    _setup_logging(verbose)
    from fer_live.trainer.train import run_training

    values: dict[str, Any] = {
        "name": name, "arch": arch, "dataset": dataset, "data_root": str(data_root),
        "pretrained": pretrained, "init": init, "input_size": input_size, "channels": channels,
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
        "warmup_epochs": warmup_epochs, "drop_rate": drop_rate, "ema_decay": ema_decay,
        "soft_targets": soft_targets, "label_smoothing": label_smoothing, "seed": seed,
        "device": device, "num_threads": num_threads, "max_train": max_train,
        "max_eval": max_eval, "out_dir": out_dir, "model_kwargs": json.loads(model_kwargs),
    }  # fmt: skip
    cfg = TrainConfig.load(config) if config else TrainConfig.from_dict(values)
    with _progress() as progress:
        result = run_training(cfg, resume=resume, progress=progress)
    console.print(
        f"[bold]best valid acc {result.best_valid_acc:.4f}[/] at epoch {result.best_epoch} "
        f"-> {result.run_dir / 'best.pt'}"
    )


@app.command("eval")
def eval_cmd(
    checkpoint: Path = typer.Argument(..., help="best.pt or last.pt of a run."),
    dataset: str = typer.Option("", help="ferplus, fer2013 or a folder (default: the run's)."),
    data_root: Path | None = typer.Option(None, help="FERPlus root (default: the run's)."),
    split: list[str] = typer.Option(["test"], help="Split(s) to evaluate."),
    tta: bool = typer.Option(True, help="Average with the horizontal flip."),
    out: Path | None = typer.Option(None, help="Folder for metrics JSON and confusion PNGs."),
    decision_from: Path | None = typer.Option(
        None, help="Apply the decision rule of this exported model (.onnx or its .json card)."
    ),
    verbose: bool = typer.Option(False),
) -> None:
    """Evaluate a checkpoint: accuracy, macro-F1, per-class F1 and confusion matrix."""
    _setup_logging(verbose)
    from fer_live.trainer.evaluate import evaluate_split, load_checkpoint, plot_confusion
    from fer_live.trainer.export import read_any_card

    model, card, cfg = load_checkpoint(checkpoint)
    decision = read_any_card(decision_from).decision if decision_from else None
    dataset = dataset or cfg.dataset
    root = data_root or Path(cfg.data_root)
    out = out or checkpoint.parent / "eval"
    results = {}
    for name in split:
        metrics = evaluate_split(model, card, dataset, root, name, tta=tta, decision=decision)
        results[f"{Path(dataset).name}_{name}"] = metrics.to_dict()
        png = plot_confusion(
            metrics,
            out / f"confusion_{Path(dataset).name}_{name}.png",
            f"{card.name} {dataset}/{name}",
        )
        console.print(
            f"{dataset}/{name}: acc [bold]{metrics.accuracy:.4f}[/] "
            f"macro-F1 {metrics.macro_f1:.4f} (n={metrics.count}) -> {png}"
        )
    out.mkdir(parents=True, exist_ok=True)
    metrics_file = out / "metrics.json"
    previous = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    metrics_file.write_text(json.dumps({**previous, **results}, indent=2) + "\n")


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="best.pt of a run."),
    output: Path = typer.Option(..., "--output", "-o", help="Output .onnx path."),
    crop_framing: Path | None = typer.Option(
        None, help="crop_framing.json (default benchmarks/results/crop_framing.json if present)."
    ),
    name: str | None = typer.Option(None, help="Card name (default: the run name)."),
    metrics: Path | None = typer.Option(None, help="metrics.json from 'eval' to put in the card."),
    torchscript: bool = typer.Option(False, help="Also write <stem>.pt (TorchScript)."),
    verbose: bool = typer.Option(False),
) -> None:
    """Export a checkpoint to ONNX (+ sidecar JSON) with a parity check and CPU latency."""
    _setup_logging(verbose)
    from dataclasses import replace

    from fer_live.trainer.evaluate import load_checkpoint
    from fer_live.trainer.export import export_onnx, export_torchscript, load_crop_framing

    model, card, _ = load_checkpoint(checkpoint)
    card = replace(card, crop=load_crop_framing(crop_framing), name=name or card.name)
    if metrics is not None:
        card = replace(
            card, metrics={**card.metrics, **_summarize_metrics(json.loads(metrics.read_text()))}
        )
    report = export_onnx(model, card, output)
    console.print(
        f"ONNX {report.path}: max |logit diff| vs torch {report.max_abs_logit_diff:.2e}, "
        f"ORT CPU batch-1 latency {report.latency_ms_b1:.2f} ms"
    )
    if torchscript:
        console.print(f"TorchScript {export_torchscript(model, card, output)}")


def _summarize_metrics(results: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for key, value in results.items():
        summary[f"{key}_acc"] = round(value["accuracy"], 4)
        summary[f"{key}_macro_f1"] = round(value["macro_f1"], 4)
    return summary


@app.command("ensemble-export")
def ensemble_export(
    members: list[Path] = typer.Argument(..., help="Exported .onnx members (same input)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output .onnx path."),
    name: str = typer.Option("fer_ensemble", help="Card name."),
    flip_tta: bool = typer.Option(False, help="Average each member over the flipped face too."),
    verbose: bool = typer.Option(False),
) -> None:
    """Write several exported models as one ONNX graph (mean probabilities, one card)."""
    _setup_logging(verbose)
    from fer_live.trainer.ensemble_export import export_ensemble
    from fer_live.trainer.export import ort_latency_ms, read_onnx_card

    path = export_ensemble(members, output, name, flip_tta)
    latency = ort_latency_ms(path, read_onnx_card(path), runs=100, threads=1)
    console.print(f"ensemble {path}: ORT CPU batch-1 latency on one thread {latency:.2f} ms")


@app.command("fold-gus")
def fold_gus(
    model: Path = typer.Argument(..., help="Exported .onnx model (its .pt twin is folded too)."),
    head: Path | None = typer.Option(None, help="The .gus.npz head (default: beside the model)."),
    verbose: bool = typer.Option(False),
) -> None:
    """Fold the GUS-T head's first-layer projection into the model as its gus_proj output."""
    _setup_logging(verbose)
    from fer_live.trainer.fold_gus import fold_model

    for report in fold_model(model, head):
        console.print(
            f"{report.path}: gus_proj vs embedding @ w1, max |diff| {report.max_abs_diff:.2e}"
        )


@app.command()
def calibrate(
    model: Path = typer.Argument(..., help="Exported .onnx model (its card is rewritten)."),
    data_root: Path = typer.Option(DEFAULT_DATA_ROOT, help="FERPlus root folder."),
    max_acc_drop: float = typer.Option(0.5, help="Valid accuracy points the offsets may cost."),
    out: Path | None = typer.Option(None, help="Report JSON (default: beside the model)."),
    write: bool = typer.Option(True, help="Write the rule into the model's card."),
    product_guard: bool = typer.Option(
        True, help="Also bound the accuracy cost on Valid read as tight crops by the product."
    ),
    test: bool = typer.Option(True, help="Score Test too (--no-test while still choosing)."),
    verbose: bool = typer.Option(False),
) -> None:
    """Fit the decision rule (temperature + class offsets) on Valid and put it in the card."""
    _setup_logging(verbose)
    from fer_live.trainer.model_file_eval import calibrate_model

    report = calibrate_model(model, data_root, max_acc_drop / 100.0, write, product_guard, test)
    out = out or model.with_name(f"{model.stem}.decision.json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    for split in [s for s in ("valid", "test") if s in report]:
        for name, row in report[split].items():
            console.print(
                f"{split:5s} rule {name:11s} acc {row['accuracy']:.4f} "
                f"macro-F1 {row['macro_f1']:.4f} balanced {row['balanced_accuracy']:.4f} "
                f"ECE {row['ece']:.4f}"
            )
    console.print(f"report -> {out}")


@app.command()
def report(
    models: list[Path] = typer.Argument(None, help="Exported .onnx files (default: shipped)."),
    out: Path = typer.Option(Path("benchmarks/results"), help="Output folder."),
) -> None:
    """Write the accuracy table (markdown + JSON) beside the papers' numbers."""
    from fer_live.trainer.report import write_report

    md, js = write_report(models or [], out)
    console.print(f"wrote {md} and {js}")


# Packages of the [train] extra; a plain ``pip install -e .`` has none of them.
_TRAIN_EXTRA = ("torch", "torchvision", "timm")


def main() -> None:
    """Console entry point: run the app, turning FerLiveError into one line and exit code 2.

    A missing training dependency (a plain install has no torch) is one line with the install
    command and exit code 1, not a ModuleNotFoundError traceback.
    """
    try:
        app()
    except FerLiveError as exc:
        # One unwrapped line, whatever the terminal width (paths make these lines long).
        console.print(f"[red]error:[/] {exc}", soft_wrap=True, highlight=False)
        raise SystemExit(2) from None
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in _TRAIN_EXTRA:
            raise
        message = f'fer-train needs {exc.name}, which is not installed: pip install -e ".[train]"'
        console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
        raise SystemExit(1) from None
