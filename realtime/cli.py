"""The ``fer-live`` command: run (the default), ``info`` and ``bench``.

``fer-live --camera 0`` and ``fer-live run --camera 0`` are the same command: ``main`` inserts
``run`` when the first argument is not a subcommand. Errors become one ``error: ...`` line on
stderr and a non-zero exit: 1 for fer-live errors, 2 for bad flags, 130 after Ctrl-C.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.exceptions import TyperException

from realtime import config as cfg
from realtime.compile_cli import compile_command
from realtime.config import LiveConfig
from realtime.errors import ConfigError, FerLiveError
from realtime.smooth import SMOOTHERS

app = typer.Typer(
    name="fer-live",
    help=(
        "Real-time facial expression recognition from cameras, videos and images. "
        "Without a command, 'run' is implied: fer-live --camera 0, "
        "fer-live --source clip.mp4 -o out.mp4 --jsonl faces.jsonl"
    ),
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=False,
)
SUBCOMMANDS = ("run", "info", "bench", "compile")
_TOP_LEVEL = ("--help", "-h")

SourceOpt = Annotated[
    str | None,
    typer.Option("--source", "-s", help="Camera index, video, URL, image, folder or glob."),
]
CameraOpt = Annotated[int | None, typer.Option("--camera", "-c", help="Camera index.")]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="Annotated video (.mp4) or image folder.")
]
JsonlOpt = Annotated[Path | None, typer.Option("--jsonl", help="Per-face records (JSON Lines).")]
CsvOpt = Annotated[Path | None, typer.Option("--csv", help="Per-face records (CSV).")]
HeadlessOpt = Annotated[
    bool, typer.Option("--headless", help="No window (default when there is no display).")
]
ModelOpt = Annotated[
    Path | None,
    typer.Option(
        "--model", "-m", help="Model file (.onnx, .pt, .engine) or a shipped name: accurate."
    ),
]
BackendOpt = Annotated[
    str,
    typer.Option(
        "--backend",
        help="auto, onnx, torch, tensorrt or cuda (auto on a GPU device: tensorrt, else cuda, "
        "else onnx).",
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N or auto.")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="Inference threads.")]
DetectEveryOpt = Annotated[int, typer.Option("--detect-every", help="Detect every K frames.")]
MaxFacesOpt = Annotated[int, typer.Option("--max-faces", help="Most faces per frame.")]
MinScoreOpt = Annotated[float, typer.Option("--min-score", help="Detector score threshold.")]
TilesOpt = Annotated[
    int | None,
    typer.Option(
        "--detect-tiles",
        help="Also detect on N x N tiles, for small faces (default: 2 for images, 1 for video).",
    ),
]
SmoothOpt = Annotated[
    str,
    typer.Option(
        "--smooth",
        help=f"Temporal smoother: {', '.join(sorted(SMOOTHERS))} "
        "(auto: graph when the model ships a GUS head, else ema).",
    ),
]
BatchOpt = Annotated[
    int, typer.Option("--batch-frames", help="Batch the faces of N frames (files only).")
]
MaxFramesOpt = Annotated[int | None, typer.Option("--max-frames", help="Stop after N frames.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")]


def build_config(**flags: Any) -> LiveConfig:
    """Map CLI flags one-to-one onto a validated ``LiveConfig``.

    Raises:
        ConfigError: A value is out of range (the message names the flag).
    """
    source, camera = flags["source"], flags["camera"]
    if source is not None and camera is not None:
        raise ConfigError("--source and --camera cannot be used together")
    spec = source if source is not None else str(camera if camera is not None else 0)
    if camera is not None and camera < 0:
        raise ConfigError(f"--camera must be >= 0, got {camera}")
    return cfg.LiveConfig(
        capture=cfg.CaptureConfig(spec, flags["max_frames"]),
        detect=cfg.DetectConfig(
            flags["detect_every"], flags["max_faces"], flags["min_score"], flags["detect_tiles"]
        ),
        backend=cfg.BackendConfig(
            flags["model"], flags["backend"], flags["device"], flags["threads"]
        ),
        batch=cfg.BatchConfig(flags["batch_frames"]),
        smooth=cfg.SmoothConfig(flags["smooth"]),
        output=cfg.OutputConfig(
            flags["output"], flags["jsonl"], flags["csv"], True if flags["headless"] else None
        ),
    )


@app.command("run")
def run_command(
    source: SourceOpt = None,
    camera: CameraOpt = None,
    output: OutputOpt = None,
    jsonl: JsonlOpt = None,
    csv: CsvOpt = None,
    headless: HeadlessOpt = False,
    model: ModelOpt = None,
    backend: BackendOpt = "auto",
    device: DeviceOpt = "cpu",
    threads: ThreadsOpt = None,
    detect_every: DetectEveryOpt = 1,
    max_faces: MaxFacesOpt = 10,
    min_score: MinScoreOpt = 0.55,
    detect_tiles: TilesOpt = None,
    smooth: SmoothOpt = "ema",
    batch_frames: BatchOpt = 1,
    max_frames: MaxFramesOpt = None,
    verbose: VerboseOpt = False,
) -> int:
    """Recognize expressions live (window) or in a file (annotated video, JSONL, CSV)."""
    _setup_logging(verbose)
    return run_live(build_config(**locals()))


@app.command("bench")
def bench_command(
    ctx: typer.Context,
    source: Annotated[str, typer.Option("--source", "-s", help="Video file to benchmark.")],
    output: OutputOpt = None,
    jsonl: JsonlOpt = None,
    csv: CsvOpt = None,
    model: ModelOpt = None,
    backend: BackendOpt = "auto",
    device: DeviceOpt = "cpu",
    threads: ThreadsOpt = None,
    detect_every: DetectEveryOpt = 1,
    max_faces: MaxFacesOpt = 10,
    min_score: MinScoreOpt = 0.55,
    detect_tiles: TilesOpt = None,
    smooth: SmoothOpt = "ema",
    batch_frames: BatchOpt = 1,
    max_frames: MaxFramesOpt = None,
    results_dir: Annotated[
        Path, typer.Option("--results-dir", help="Where the JSON result goes.")
    ] = Path("benchmarks/results"),
    verbose: VerboseOpt = False,
) -> int:
    """Per-stage latency, end-to-end FPS, decode and decode+detect ceilings; saves JSON."""
    _setup_logging(verbose)
    flags = dict(locals(), camera=None, headless=True)
    argv = (ctx.obj or {}).get("argv", sys.argv[1:])
    return run_bench(build_config(**flags), results_dir, ["fer-live", *argv])


app.command("compile")(compile_command)


@app.command("info")
def info_command() -> int:
    """Print versions, available backends and devices."""
    print_info()
    return 0


def with_default_command(args: Sequence[str]) -> list[str]:
    """Insert ``run`` unless the first argument is a subcommand or a top-level help flag."""
    args = list(args)
    if args and (args[0] in SUBCOMMANDS or args[0] in _TOP_LEVEL):
        return args
    return ["run", *args]


def _setup_logging(verbose: bool) -> None:
    from rich.console import Console
    from rich.logging import RichHandler

    handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=False)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[handler],
        force=True,
    )


def _quiet_native_logs() -> None:
    """Keep OpenCV and MediaPipe's native log lines off stderr (errors are reported by us)."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    os.environ.setdefault("AV_LOG_FORCE_NOCOLOR", "1")
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def _single_threaded_blas() -> None:
    """One BLAS thread: the smoother's small products gain nothing from more, and idle BLAS
    threads spin on the cores that decoding and detection need."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def _error(message: str) -> None:
    sys.stderr.write("error: " + " ".join(str(message).split()) + "\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fer-live`` script; returns the exit code.

    Args:
        argv: Arguments without the program name; None reads ``sys.argv``.
    """
    _quiet_native_logs()
    _single_threaded_blas()
    argv = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    try:
        result = command.main(
            args=with_default_command(argv),
            prog_name="fer-live",
            standalone_mode=False,
            obj={"argv": argv},
        )
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        _error("interrupted")
        return 130
    except TyperException as exc:
        _error(exc.format_message())
        return exc.exit_code
    except ConfigError as exc:
        _error(str(exc))
        return 2
    except FerLiveError as exc:
        _error(str(exc))
        return 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    return int(result) if isinstance(result, int) else 0


def _progress(total: int | None, enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[fps]:.1f} FPS"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    return Progress(*columns, console=Console(stderr=True), disable=not enabled, transient=False)


def run_live(config: LiveConfig) -> int:
    """Open the source, stages and sinks, process until the end or Ctrl-C, and report.

    Returns:
        0 at the end of the stream or on ``q``/Esc, 130 after Ctrl-C.
    """
    from rich.console import Console

    from realtime.capture import open_source
    from realtime.pipeline import RateMeter, open_stages, process
    from realtime.render import OverlayRenderer
    from realtime.sinks import NullSink, open_sinks

    cap = config.capture
    with ExitStack() as stack:
        source = stack.enter_context(
            open_source(cap.source, cap.max_frames, cap.reconnect_attempts)
        )
        config = config.for_source(source.live, source.still)
        stages = stack.enter_context(open_stages(config))
        labels = stages.backend.card.labels
        stop = stack.enter_context(_graceful_ctrl_c())
        opened = open_sinks(
            config.output, labels, source.fps, live=source.live, inputs=source.input_files
        )
        sinks = [stack.enter_context(s) for s in opened]
        if all(isinstance(s, NullSink) for s in sinks):
            logging.getLogger(__name__).warning(
                "no window (no display or --headless) and no -o/--jsonl/--csv: results are not kept"
            )
        progress = stack.enter_context(_progress(source.expected_frames, not source.live))
        task = progress.add_task(Path(source.source_id).name, total=source.expected_frames, fps=0.0)
        meter = RateMeter()

        def advance(result: Any) -> None:
            meter.tick(result.timings_ms)
            progress.update(task, advance=1, fps=meter.fps)

        summary = process(source, stages, sinks, OverlayRenderer(labels), advance, stop)
        _ignore_ctrl_c()  # closing the sinks finalizes the outputs; never cut that short
    Console(stderr=True).print(
        f"{summary.frames} frames in {summary.wall_s:.1f} s ({summary.fps:.1f} FPS); "
        f"faces in {summary.face_frames}; dropped {summary.dropped}"
        + ("; interrupted" if summary.interrupted else ""),
        soft_wrap=True,
    )
    return 130 if summary.interrupted else 0


def _ignore_ctrl_c() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def _graceful_ctrl_c() -> Iterator[threading.Event]:
    """First Ctrl-C: finish the current frame, then stop; a second one interrupts at once."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_sigint(signum: int, frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def run_bench(config: LiveConfig, results_dir: Path, command: list[str]) -> int:
    """Run the benchmark, print its table and save the JSON result."""
    from rich.console import Console

    from realtime.bench import report_table, run_benchmark, save_result

    result = run_benchmark(config, command)
    path = save_result(result, results_dir)
    console = Console()
    console.print(report_table(result))
    console.print(f"saved {path}", soft_wrap=True)
    return 0


def print_info() -> None:
    """Versions, backends and devices as a rich table on stdout."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from realtime.assets import default_model_path, describe_model, shipped_models
    from realtime.backends import auto_summary, available_backends
    from realtime.bench import device_info, versions

    table = Table(title="fer-live", show_header=False)
    for name, version in versions().items():
        table.add_row(name, version)
    for name, status in available_backends().items():
        table.add_row(f"backend {name}", escape(status))  # hints hold "[extra]" brackets
    for row, value in auto_summary(default_model_path("auto")).items():
        table.add_row(row, value)
    for alias, path in shipped_models().items():
        table.add_row(f"model {alias}", escape(describe_model(path)))
    for key, value in device_info().items():
        table.add_row(key, str(value))
    table.add_row("devices", ", ".join(_devices()))
    Console().print(table)


def _devices() -> list[str]:
    found = ["cpu"]
    try:
        import onnxruntime

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            found.append("cuda (onnxruntime)")
    except ImportError:
        pass
    if importlib.util.find_spec("torch") is not None:
        import torch

        found += [f"cuda:{i} (torch)" for i in range(torch.cuda.device_count())]
    return found
