"""``fer-train methods ...``: train the METHODS.md components (GUS head, MRE, GUS, mixed loss).

Mounted on the main app by one line in ``trainer/cli.py``:
``app.add_typer(methods_app, name="methods")``.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from trainer.config import DEFAULT_DATA_ROOT

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

    from realtime.smooth_graph import head_path_for
    from trainer.methods.train_gus_head import HeadConfig, run_gus_head

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = HeadConfig(
        hidden=hidden, norm=norm, loss=loss, epochs=epochs, lr=lr, eval_threshold=threshold,
        seed=seed,
    )  # fmt: skip
    target = out or head_path_for(model)
    meta = run_gus_head(model, target, data_root, cfg, max_train)
    console.print(f"wrote {target}: {json.dumps(meta['metrics'])}")


@methods_app.command("train")
def train(
    checkpoint: Path = typer.Argument(..., help="fer-train checkpoint to start from (best.pt)."),
    name: str = typer.Option(..., help="Run name (runs/<name>)."),
    method: str = typer.Option("baseline", help="baseline, mre or gus (end to end)."),
    loss: str = typer.Option("ce", help="ce, paper or recommended (mixed loss profiles)."),
    epochs: int = typer.Option(1),
    batch_size: int = typer.Option(128),
    lr: float = typer.Option(1e-4, help="Backbone learning rate (new layers x10)."),
    mre_mode: str = typer.Option("channel", help="MRE mixing: channel, spatial or element."),
    mre_weight: float = typer.Option(1.0, help="MRE lambda."),
    max_train: int = typer.Option(0),
    max_eval: int = typer.Option(0),
    seed: int = typer.Option(0),
    device: str = typer.Option("cpu", help="cpu or cuda."),
) -> None:
    """Fine-tune CHECKPOINT with a method and loss; logs every inference mode on Valid."""
    import logging

    from trainer.methods.mre import MreConfig
    from trainer.methods.runner import MethodConfig, run_method

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = MethodConfig(
        checkpoint=str(checkpoint), name=name, method=method, loss=loss, epochs=epochs,
        batch_size=batch_size, lr=lr, max_train=max_train, max_eval=max_eval, seed=seed,
        device=device, mre=MreConfig(mode=mre_mode, weight=mre_weight),
    )  # fmt: skip
    records = run_method(cfg)
    console.print(json.dumps(records[-1]))


@methods_app.command("merge")
def merge(
    member: list[str] = typer.Option(..., help="name=path (.onnx or .gus.npz); repeat."),
    weights: str = typer.Option("S1", help="S1, S2 or JSON weights per member name."),
    data_root: Path = typer.Option(DEFAULT_DATA_ROOT, help="FERPlus root."),
    tau: float | None = typer.Option(None, help="Sharpen logits (mixed-loss members)."),
    threshold: float = typer.Option(0.93, help="Correcting: cosine threshold of a group."),
) -> None:
    """Merge members' probabilities and apply correcting; prints FERPlus test accuracies."""
    from trainer.methods.ensemble import evaluate_merge

    members = dict(spec.split("=", 1) for spec in member)
    results = evaluate_merge(
        {k: Path(v) for k, v in members.items()}, weights, data_root, tau, threshold
    )
    console.print(json.dumps(results, indent=1))
