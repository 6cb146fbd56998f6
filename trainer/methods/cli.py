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
    name: str = typer.Option(..., help="Run name (runs/<name>)."),
    method: str = typer.Option("baseline", help="baseline, mre, gus, ... (see trainer.methods)."),
    opt: list[str] = typer.Option([], help="Method option key=value; repeat."),
    init: str = typer.Option("imagenet", help="imagenet, or a fer-train checkpoint (best.pt)."),
    arch: str = typer.Option("mobilenetv2", help="Backbone when init is imagenet."),
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
) -> None:
    """Train one method under the shared protocol; writes runs/<name>/result.json (Valid, Test)."""
    import logging

    from trainer.methods.runner import MethodConfig, run_method

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    options = dict(_split_option(item) for item in opt)
    cfg = MethodConfig(
        name=name, method=method, options=options, init=init, arch=arch, loss=loss,
        epochs=epochs, batch_size=batch_size, lr=lr, head_lr_mult=head_lr_mult, noise=noise,
        noise_seed=noise_seed, hard_targets=not soft, max_train=max_train, max_eval=max_eval,
        seed=seed, device=device,
    )  # fmt: skip
    result = run_method(cfg)
    console.print(json.dumps({k: result[k] for k in ("valid", "test", "labels")}))


def _split_option(item: str) -> tuple[str, str]:
    from realtime.errors import ConfigError

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
    from trainer.methods.ensemble import evaluate_merge

    members = dict(spec.split("=", 1) for spec in member)
    results = evaluate_merge(
        {k: Path(v) for k, v in members.items()}, weights, data_root, tau, threshold
    )
    console.print(json.dumps(results, indent=1))
