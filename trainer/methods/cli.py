"""``fer-train methods ...``: train the METHODS.md components (GUS head, MRE, GUS, mixed loss).

Mounted on the main app by one line in ``trainer/cli.py``:
``app.add_typer(methods_app, name="methods")``.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from fer_live.trainer.config import DEFAULT_DATA_ROOT

methods_app = typer.Typer(add_completion=False, help="Train the METHODS.md components.")
console = Console(stderr=True)


@methods_app.command("gus-head")
def gus_head(
    model: Path = typer.Option(Path("weights/fer_default.onnx"), help="Frozen base model."),
    out: Path | None = typer.Option(None, help="Output .gus.npz (default: beside the model)."),
    data_root: Path = typer.Option(DEFAULT_DATA_ROOT, help="FERPlus root."),
    norm: str = typer.Option("mlgcn", help="Graph operator: mlgcn (paper) or kipf."),
    hidden: int = typer.Option(512, help="Width of both GUS layers."),
    loss: str = typer.Option("ce", help="ce, paper (focal+SR) or recommended (CE+focal+SR)."),
    epochs: int = typer.Option(30),
    lr: float = typer.Option(1e-3),
    threshold: float = typer.Option(0.5, help="Cosine threshold at inference."),
    max_train: int = typer.Option(0, help="Use only N training images (smoke runs)."),
    seed: int = typer.Option(0),
) -> None:
    """Train the GUS head on frozen embeddings of MODEL and write <stem>.gus.npz."""
    import logging

    from fer_live.smooth.gus_head import head_path_for
    from fer_live.trainer.methods.train_gus_head import HeadConfig, run_gus_head

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = HeadConfig(
        hidden=hidden, norm=norm, loss=loss, epochs=epochs, lr=lr, eval_threshold=threshold,
        seed=seed,
    )  # fmt: skip
    target = out or head_path_for(model)
    meta = run_gus_head(model, target, data_root, cfg, max_train)
    console.print(f"wrote {target}: {json.dumps(meta['metrics'])}")


@methods_app.command("gus-windows")
def gus_windows(
    model: Path = typer.Option(Path("weights/fer_default.onnx"), help="Frozen base model."),
    head: Path | None = typer.Option(None, help="Head to start from (default: beside model)."),
    out: Path = typer.Option(..., help="Output .gus.npz."),
    data_root: Path = typer.Option(DEFAULT_DATA_ROOT, help="FERPlus root."),
    images: int = typer.Option(10000, help="Train images (0 = all), each as jittered frames."),
    views: int = typer.Option(12, help="Jittered frames per image."),
    epochs: int = typer.Option(8),
    lr: float = typer.Option(3e-4),
    change_p: float = typer.Option(0.25, help="Share of windows that start with another image."),
    short_p: float = typer.Option(0.25, help="Share of partly filled windows."),
    seed: int = typer.Option(0),
) -> None:
    """Fine-tune a GUS head on windows of one face's jittered frames (GUS-T's graphs)."""
    import logging

    from fer_live.smooth.gus_head import head_path_for
    from fer_live.trainer.methods.window_head import WindowConfig, run_window_head

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = WindowConfig(
        images=images, views=views, epochs=epochs, lr=lr, change_p=change_p, short_p=short_p,
        seed=seed,
    )  # fmt: skip
    meta = run_window_head(model, head or head_path_for(model), out, data_root, cfg)
    console.print(f"wrote {out}: {json.dumps(meta['window_finetune'])}")


@methods_app.command("train")
def train(
    name: str = typer.Option(..., help="Run name (runs/<name>)."),
    method: str = typer.Option(
        "baseline", help="baseline, mre, gus, ... (see fer_live.trainer.methods)."
    ),
    opt: list[str] = typer.Option([], help="Method option key=value; repeat."),
    init: str = typer.Option("imagenet", help="imagenet, or a fer-train checkpoint (best.pt)."),
    arch: str = typer.Option("mobilenetv2", help="Backbone when init is imagenet."),
    input_size: int = typer.Option(64, help="Input side in pixels when init is imagenet."),
    loss: str = typer.Option("ce", help="ce, paper or recommended (mixed loss profiles)."),
    epochs: int = typer.Option(4),
    batch_size: int = typer.Option(128),
    lr: float = typer.Option(1e-3, help="Peak learning rate (AdamW, warm-up + cosine)."),
    head_lr_mult: float = typer.Option(1.0, help="Learning-rate factor of new layers."),
    noise: float = typer.Option(0.0, help="Fraction of training labels flipped (noisy protocol)."),
    noise_seed: int = typer.Option(0),
    soft: bool = typer.Option(False, help="Train on FERPlus vote distributions, not majorities."),
    max_train: int = typer.Option(0, help="Use the first N training images (reduced scale)."),
    max_eval: int = typer.Option(0),
    seed: int = typer.Option(0),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    threads: int = typer.Option(0, help="torch CPU threads (0: torch's default)."),
    resume: bool = typer.Option(False, help="Continue runs/<name> from its last finished epoch."),
) -> None:
    """Train one method under the shared protocol; writes runs/<name>/result.json (Valid, Test)."""
    import logging

    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from fer_live.trainer.methods.runner import MethodConfig, run_method

    if threads > 0:
        torch.set_num_threads(threads)

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    options = dict(_split_option(item) for item in opt)
    cfg = MethodConfig(
        name=name, method=method, options=options, init=init, arch=arch, input_size=input_size,
        loss=loss,
        epochs=epochs, batch_size=batch_size, lr=lr, head_lr_mult=head_lr_mult, noise=noise,
        noise_seed=noise_seed, hard_targets=not soft, max_train=max_train, max_eval=max_eval,
        seed=seed, device=device,
    )  # fmt: skip
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        result = run_method(cfg, resume=resume, progress=progress)
    console.print(json.dumps({k: result[k] for k in ("valid", "test", "labels")}))


@methods_app.command("score")
def score(
    checkpoint: str = typer.Argument(..., help="fer-train checkpoint (best.pt) to evaluate."),
    name: str = typer.Option(..., help="Run name (runs/<name>) for the outputs."),
    input_size: int = typer.Option(64),
    channels: int = typer.Option(1),
) -> None:
    """Score a trained checkpoint like a method run (outputs for merging and ensembles)."""
    from fer_live.trainer.methods.runner import MethodConfig, score_checkpoint

    cfg = MethodConfig(name=name, init=checkpoint, input_size=input_size, channels=channels)
    result = score_checkpoint(cfg)
    console.print(json.dumps({k: result[k] for k in ("valid", "test")}))


@methods_app.command("score-model")
def score_model(
    model: Path = typer.Argument(..., help="Exported .onnx model, e.g. weights/fer_accurate.onnx."),
    name: str = typer.Option(..., help="Run name (runs/<name>) for the outputs."),
    data_root: Path = typer.Option(DEFAULT_DATA_ROOT, help="FERPlus root."),
    flip_tta: bool = typer.Option(False, help="Average the mirrored face (graphs without flips)."),
) -> None:
    """Score a shipped model file like a method run (outputs for ensembles)."""
    from fer_live.trainer.methods.score_model import score_model_file

    result = score_model_file(model, name, data_root, tta=flip_tta)
    console.print(json.dumps({k: result[k] for k in ("valid", "test")}))


@methods_app.command("keep")
def keep(
    name: list[str] = typer.Argument(..., help="Finished run name(s) under --runs."),
    runs: Path = typer.Option(Path("runs"), help="Parent folder of runs."),
    embeddings: bool = typer.Option(False, help="Keep the embeddings too (for correcting)."),
) -> None:
    """Copy finished runs' result files (no checkpoints) to benchmarks/results/methods_runs/."""
    from fer_live.trainer.methods.keep import keep_run

    for run in name:
        console.print(f"kept {keep_run(runs / run, embeddings=embeddings)}")


def _split_option(item: str) -> tuple[str, str]:
    from fer_live.errors import ConfigError

    if "=" not in item:
        raise ConfigError(f"method option must be key=value, got {item!r}")
    key, value = item.split("=", 1)
    return key.strip(), value.strip()


@methods_app.command("merge")
def merge(
    member: list[str] = typer.Option(..., help="name=path (.onnx or .gus.npz); repeat."),
    weights: str = typer.Option("S1", help="S1, S2 or JSON weights per member name."),
    data_root: Path = typer.Option(DEFAULT_DATA_ROOT, help="FERPlus root."),
    tau: float | None = typer.Option(None, help="Sharpen logits (mixed-loss members)."),
    threshold: float = typer.Option(0.93, help="Correcting: cosine threshold of a group."),
) -> None:
    """Merge members' probabilities and apply correcting; prints FERPlus test accuracies."""
    from fer_live.trainer.methods.ensemble import evaluate_merge

    members = dict(spec.split("=", 1) for spec in member)
    results = evaluate_merge(
        {k: Path(v) for k, v in members.items()}, weights, data_root, tau, threshold
    )
    console.print(json.dumps(results, indent=1))


@methods_app.command("au-labels")
def au_labels(
    split: str = typer.Option("train", help="FERPlus split (train, valid or test)."),
    data_root: Path = typer.Option(DEFAULT_DATA_ROOT, help="FERPlus root."),
    model: Path | None = typer.Option(None, help="face_landmarker.task (default: shared one)."),
    limit: int = typer.Option(0, help="Only the first N images (probes)."),
    cache_dir: Path | None = typer.Option(None, help="Cache folder (default: .cache/)."),
) -> None:
    """Cache MediaPipe blendshapes of a FERPlus split for ULC-AG's AU pseudo-labels."""
    from rich.progress import Progress

    from fer_live.trainer.data.cache import DEFAULT_CACHE_DIR
    from fer_live.trainer.methods.au_labels import DEFAULT_LANDMARKER, build_au_cache, load_au_cache

    with Progress(console=console) as bar:
        task = bar.add_task(f"FaceLandmarker over {split}", total=None)
        path = build_au_cache(
            data_root, split, model or DEFAULT_LANDMARKER, cache_dir or DEFAULT_CACHE_DIR, limit,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    cache = load_au_cache(path)
    console.print(
        f"wrote {path}: {len(cache.found)} images, face mesh in "
        f"{100 * cache.coverage():.1f} %, EMFACS fallback for {int((~cache.found).sum())}"
    )


@methods_app.command("ensemble")
def ensemble(
    run_dirs: list[Path] = typer.Argument(..., help="Method runs (runs/<name>) to merge."),
    primary_mode: bool = typer.Option(
        True, "--primary-mode/--all-modes", help="Each run's primary mode, or every mode."
    ),
    objective: str = typer.Option("acc", help="Tune weights on Valid: acc or nll."),
    out: Path = typer.Option(Path("benchmarks/results/ensemble.json"), help="Result JSON."),
) -> None:
    """Tune merging weights on Valid over RUN_DIRS; print Valid/Test and write the JSON."""
    from rich.table import Table

    from fer_live.trainer.methods.ensemble_tune import load_members, tune_ensemble

    record = tune_ensemble(load_members(run_dirs, primary_mode), objective)
    table = Table(title=f"ensemble (weights tuned on Valid by {objective})")
    for column in ("member", "weight", "valid acc", "test acc"):
        table.add_column(column)
    for row in record["members"]:
        table.add_row(row["name"], f"{row['weight']:.3f}", f"{row['valid_acc']:.4f}",
                      f"{row['test_acc']:.4f}")  # fmt: skip
    for name in ("uniform", "tuned"):
        table.add_row(f"[bold]{name} merge[/]", "", f"{record[name]['valid_acc']:.4f}",
                      f"{record[name]['test_acc']:.4f}")  # fmt: skip
    console.print(table)
    if record["transductive"]:
        console.print("a member runs in batch mode: these merges are transductive")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    console.print(f"wrote {out}")
