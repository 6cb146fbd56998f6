"""``fer-live compile``: the command line of ``fer_live.infer.engine.compile`` (in ``app``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from fer_live.commands.logs import setup_logging


def compile_command(
    model: Annotated[
        Path | None, typer.Argument(help="ONNX model (default: the shipped model).")
    ] = None,
    precision: Annotated[str, typer.Option("--precision", help="fp16, fp32 or int8.")] = "fp16",
    batch_sizes: Annotated[
        str, typer.Option("--batch-sizes", help="Batch sizes the engine must run (profile).")
    ] = "1,8,32,64",
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Engine cache (default $FER_LIVE_CACHE or ~/.cache)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when cached.")] = False,
    compute_capability: Annotated[
        str | None,
        typer.Option(
            "--compute-capability",
            help="Target GPU, e.g. 8.9 (TensorRT-RTX only; default: this machine's GPU).",
        ),
    ] = None,
    calib_images: Annotated[
        Path | None,
        typer.Option("--calib-images", help="Folder of face images for int8 calibration."),
    ] = None,
    calib_count: Annotated[int, typer.Option("--calib-count", help="Calibration images.")] = 512,
    inspect: Annotated[
        bool, typer.Option("--inspect", help="Report the layers and their precisions.")
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON here.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log build details.")] = False,
) -> int:
    """Build a TensorRT engine from an ONNX model (cached: later runs load it)."""
    from fer_live.infer.assets import resolve_model_path
    from fer_live.infer.engine.compile import (
        compile_engine,
        compile_report,
        image_files,
        parse_batch_sizes,
    )

    setup_logging(verbose)
    images = image_files(calib_images, calib_count) if calib_images is not None else []
    result = compile_engine(
        resolve_model_path(model, "onnx"),
        precision=precision,
        batch_sizes=parse_batch_sizes(batch_sizes),
        cache_dir=cache_dir,
        force=force,
        compute_capability=compute_capability,
        calibration_images=images,
    )
    report = compile_report(result, inspect)
    _print_compile_report(report)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _print_compile_report(report: dict[str, Any]) -> None:
    from rich.console import Console

    build = report["build"]
    verb = f"built in {report['build_s']:.1f} s" if report["built"] else "loaded from the cache"
    console = Console()
    console.print(f"{report['path']}: {verb}", soft_wrap=True, highlight=False)
    console.print(
        f"{build['trt']}, {build['precision']}, batch profile {build['profile']}, "
        f"compute capability {build['compute_capability']}",
        soft_wrap=True,
        highlight=False,
    )
    if "layer_precisions" in report:
        console.print(f"layer precisions: {report['layer_precisions']}", highlight=False)
    if "engine_inspector" in report:
        console.print(f"engine inspector: {report['engine_inspector']}", highlight=False)
