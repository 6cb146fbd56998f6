"""The ``fer-live`` command: run (the default), ``info``, ``bench``, ``compile``, ``report``
 and ``batch``.

``fer-live --camera 0`` and ``fer-live run --camera 0`` are the same command: ``main`` inserts
``run`` when the first argument is not a subcommand. Errors become one ``error: ...`` line on
stderr and a non-zero exit: 1 for fer-live errors, 2 for bad flags, 130 after Ctrl-C.
"""

from __future__ import annotations

# ruff: noqa: E402  (the start-up signal handlers go in before the slow imports below)
from fer_live.commands.signals import exit_at_once_until_running

exit_at_once_until_running()  # typer, numpy and cv2 take ~0.3 s to import

import importlib.util
import inspect
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.exceptions import TyperException

from fer_live import __version__
from fer_live import config as cfg
from fer_live.commands.batch import BatchFlags, InputsArg
from fer_live.commands.compile import compile_command
from fer_live.commands.flags import with_flag_groups
from fer_live.commands.logs import reopen_closed_std_streams, setup_logging
from fer_live.commands.report import report_command
from fer_live.commands.signals import (
    describe,
    exit_code,
)
from fer_live.config import LiveConfig
from fer_live.detect.table import detector_entry, detector_help
from fer_live.errors import ConfigError, FerLiveError
from fer_live.infer.backends.table import backend_help, check_backend
from fer_live.outputs.table import OUTPUT_FORMATS, check_output_paths
from fer_live.smooth.table import smoother_entry, smoother_help
from fer_live.types import parse_device

SUBCOMMANDS = ("run", "info", "bench", "compile", "report", "batch")


def _print_version(value: bool) -> None:
    if value:
        print(f"fer-live {__version__}")
        raise typer.Exit(0)


SourceOpt = Annotated[
    str | None,
    typer.Option("--source", "-s", help="Camera index, video, URL, image, folder or glob."),
]
CameraOpt = Annotated[int | None, typer.Option("--camera", "-c", help="Camera index.")]
HudOpt = Annotated[
    bool,
    typer.Option(
        "--hud/--no-hud",
        help="Draw the FPS and latency figures into the -o output too (default: only in the "
        "window; they vary with the machine, so the file would differ from run to run).",
    ),
]
MinConfidenceOpt = Annotated[
    float | None,
    typer.Option(
        "--min-confidence",
        help="Label a face 'uncertain' when its top probability (after smoothing) is below C, "
        "0 < C <= 1; its probabilities are still written (default: off, always the top class).",
        metavar="C",
    ),
]
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
        help=backend_help(),
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N or auto.")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="Inference threads.")]
DetectEveryOpt = Annotated[
    int | None,
    typer.Option(
        "--detect-every",
        help="Detect every K frames (default: 1, or 3 on frames that need tiles).",
    ),
]
MaxFacesOpt = Annotated[int, typer.Option("--max-faces", help="Most faces per frame.")]
MinScoreOpt = Annotated[float, typer.Option("--min-score", help="Detector score threshold.")]
TilesOpt = Annotated[
    int | None,
    typer.Option(
        "--detect-tiles",
        help="Also detect on tiles, N across the longer side, for small faces (default for "
        "images: up to 4, tiles of at least 160 px; for video from the frame size: 2 for "
        "1080p, 3 for 1440p; up to 1280 px the whole frame, with a tiled look every 30-80 "
        "frames that stays on while it finds small faces; 1: the whole frame only).",
    ),
]
DetectorOpt = Annotated[
    str,
    typer.Option("--detector", help=detector_help()),
]
SmoothOpt = Annotated[str, typer.Option("--smooth", help=smoother_help())]
BatchOpt = Annotated[
    int, typer.Option("--batch-frames", help="Batch the faces of N frames (files only).")
]
FaceMeshOpt = Annotated[
    bool,
    typer.Option(
        "--face-mesh",
        help="Also measure each face's head pose (yaw, pitch, roll in degrees) and its 52 "
        "blendshapes with MediaPipe's face landmarker, into the records (about 3-5 ms per face).",
    ),
]
MaxFramesOpt = Annotated[int | None, typer.Option("--max-frames", help="Stop after N frames.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")]
VersionOpt = Annotated[
    bool,
    typer.Option(
        "--version",
        "-V",
        help="Print the version and exit.",
        callback=_print_version,
        is_eager=True,
    ),
]


@dataclass(frozen=True)
class OutputFlags:
    """Where ``run`` and ``bench`` write results: a flag per output format, ``--hud`` and
    ``--min-confidence``.

    The flags come from the output format table (``fer_live.outputs.table``) when the app is
    made (``make_app``), so a format added to the table is a flag of both commands.

    Attributes:
        files: Output format name -> the path its flag gave (formats not asked for are absent).
        hud: ``--hud``: draw the FPS and latency figures into the annotated outputs too.
        min_confidence: ``--min-confidence``: below it a face is labelled ``uncertain``.
    """

    files: Mapping[str, Path] = field(default_factory=dict)
    hud: HudOpt = False
    min_confidence: MinConfidenceOpt = None

    @staticmethod
    def flag_parameters() -> list[inspect.Parameter]:
        """The group's options as the commands declare them (``with_flag_groups``)."""
        params = [
            inspect.Parameter(
                fmt.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[Path | None, typer.Option(*fmt.flags, help=fmt.help)],
            )
            for fmt in OUTPUT_FORMATS.values()
        ]
        hud = inspect.Parameter("hud", inspect.Parameter.KEYWORD_ONLY, default=False)
        least = inspect.Parameter("min_confidence", inspect.Parameter.KEYWORD_ONLY, default=None)
        return [*params, hud.replace(annotation=HudOpt), least.replace(annotation=MinConfidenceOpt)]

    @classmethod
    def from_flags(
        cls, hud: bool = False, min_confidence: float | None = None, **files: Path | None
    ) -> OutputFlags:
        """The group from its options' values (a format's name -> its path, or None)."""
        kept = {name: path for name, path in files.items() if path is not None}
        return cls(kept, hud, min_confidence)


@dataclass(frozen=True)
class StageFlags:
    """The model, backend and stage flags ``run`` and ``bench`` share."""

    model: ModelOpt = None
    backend: BackendOpt = "auto"
    device: DeviceOpt = "cpu"
    threads: ThreadsOpt = None
    detect_every: DetectEveryOpt = None
    max_faces: MaxFacesOpt = 32
    min_score: MinScoreOpt = 0.55
    detect_tiles: TilesOpt = None
    detector: DetectorOpt = "short"
    smooth: SmoothOpt = "auto"
    batch_frames: BatchOpt = 1
    max_frames: MaxFramesOpt = None
    face_mesh: FaceMeshOpt = False


def source_spec(source: str | None, camera: int | None) -> str:
    """The capture source of ``--source``/``--camera`` (camera 0 when neither is given).

    Raises:
        ConfigError: Both flags, or a camera index out of range.
    """
    if source is not None and camera is not None:
        raise ConfigError("--source and --camera cannot be used together")
    if camera is not None and camera < 0:
        raise ConfigError(f"--camera must be >= 0, got {camera}")
    if camera is not None and camera > cfg.MAX_CAMERA_INDEX:
        raise ConfigError(f"--camera must be <= {cfg.MAX_CAMERA_INDEX}, got {camera}")
    return source if source is not None else str(camera if camera is not None else 0)


def live_config(
    source: str, outputs: OutputFlags, stages: StageFlags, headless: bool | None
) -> LiveConfig:
    """Map the flags one-to-one onto a validated ``LiveConfig``.

    This is where the flags enter: each value is parsed and checked here once, the names of
    detectors, backends and smoothers against their stage's table, so a bad flag fails before
    any source, model or output opens.

    Raises:
        ConfigError: A value is out of range, malformed or names nothing in its table (the
            message names the flag).
    """
    capture = cfg.CaptureConfig(source, stages.max_frames)
    detect = cfg.DetectConfig(
        stages.detect_every,
        stages.max_faces,
        stages.min_score,
        stages.detect_tiles,
        detector=detector_entry(stages.detector).name,
    )
    backend = cfg.BackendConfig(
        stages.model, check_backend(stages.backend), parse_device(stages.device), stages.threads
    )
    batch = cfg.BatchConfig(stages.batch_frames)
    smooth = cfg.SmoothConfig(smoother_entry(stages.smooth).name)
    check_output_paths(outputs.files)
    output = cfg.OutputConfig(outputs.files, headless, outputs.hud, outputs.min_confidence)
    mesh = cfg.MeshConfig(stages.face_mesh)
    return cfg.LiveConfig(capture, detect, cfg.TrackConfig(), backend, batch, smooth, output, mesh)


def build_config(
    source: str | None = None, camera: int | None = None, headless: bool = False, **flags: Any
) -> LiveConfig:
    """``run``'s flags by name (for scripts and tests); unnamed ones keep their defaults.

    The output flags go by their format's name: ``video`` (``-o``), ``jsonl``, ``csv``.

    Raises:
        ConfigError: A value is out of range (the message names the flag).
        TypeError: An unknown flag name.
    """
    output_names = [*OUTPUT_FORMATS, "hud", "min_confidence"]
    outputs = OutputFlags.from_flags(**{n: flags.pop(n) for n in output_names if n in flags})
    stages = StageFlags(**flags)
    return live_config(source_spec(source, camera), outputs, stages, True if headless else None)


def run_command(
    *,
    source: SourceOpt = None,
    camera: CameraOpt = None,
    outputs: OutputFlags,
    headless: HeadlessOpt = False,
    stages: StageFlags,
    verbose: VerboseOpt = False,
    version: VersionOpt = False,
) -> int:
    """Recognize expressions live (window) or in a file (annotated video, JSONL, CSV).

    'run' is the default command: fer-live --camera 0, fer-live -s clip.mp4 -o out.mp4.
    Other commands (each with --help): fer-live info (versions, backends, devices),
    fer-live bench -s clip.mp4 (latency and FPS), fer-live compile (TensorRT engine),
    fer-live report faces.jsonl (per-track summary and timeline plots).
    """
    try:
        setup_logging(verbose)
        from fer_live.commands.run import run_live

        config = live_config(
            source_spec(source, camera), outputs, stages, True if headless else None
        )
        return run_live(config)
    except KeyboardInterrupt as exc:  # here, before typer turns it into a silent exit 130
        return _interrupted(exc)


def bench_command(
    ctx: typer.Context,
    *,
    source: Annotated[str, typer.Option("--source", "-s", help="Video file to benchmark.")],
    outputs: OutputFlags,
    stages: StageFlags,
    results_dir: Annotated[
        Path | None,
        typer.Option(
            "--results-dir",
            help="Where the JSON result goes (default: fer-live/bench in the user's data folder, "
            "~/.local/share on Linux).",
        ),
    ] = None,
    vs_smooth: Annotated[
        str | None,
        typer.Option(
            "--vs-smooth",
            help="Also run the pipeline with this smoother, alternating with --smooth's, and "
            "print both FPS and their ratio.",
        ),
    ] = None,
    verbose: VerboseOpt = False,
) -> int:
    """Per-stage latency, end-to-end FPS, decode and decode+detect ceilings; saves JSON."""
    argv = (ctx.obj or {}).get("argv", sys.argv[1:])
    try:
        setup_logging(verbose)
        config = live_config(source, outputs, stages, headless=True)
        if vs_smooth is not None:  # a bad name fails before the benchmark starts
            smoother_entry(vs_smooth, "--vs-smooth")
            if vs_smooth == config.smooth.name:
                raise ConfigError(f"--vs-smooth {vs_smooth} is the run's own --smooth")
        return run_bench(config, results_dir, ["fer-live", *argv], vs_smooth)
    except KeyboardInterrupt as exc:  # here, before typer turns it into a silent exit 130
        return _interrupted(exc)


def batch_command(
    *,
    inputs: InputsArg,
    job: BatchFlags,
    stages: StageFlags,
    verbose: VerboseOpt = False,
) -> int:
    """Process many videos into one folder; a rerun resumes (docs/batch.md).

    Per input: DIR/NAME/NAME.jsonl (the records of fer-live -s VIDEO --jsonl), NAME.summary.csv,
    and with --csv / --video NAME.csv / NAME.mp4. For the job: DIR/job.csv, DIR/job.json (each
    input's status, counts, error) and DIR/summary.csv (every track). Exit codes: 0 all done,
    1 an input failed, 2 bad usage, 130/143 interrupted.
    """
    try:
        setup_logging(verbose)
        from fer_live.commands.batch import run_batch

        config = live_config("batch", OutputFlags(), stages, headless=True)
        return run_batch(inputs, job, config, threads=stages.threads is not None)
    except KeyboardInterrupt as exc:  # here, before typer turns it into a silent exit 130
        return _interrupted(exc)


def info_command() -> int:
    """Print versions, available backends and devices."""
    print_info()
    return 0


def make_app() -> typer.Typer:
    """The ``fer-live`` typer app, made from the tables as they are now.

    ``main`` makes it for every call, so an entry added to a table (an output format's flag)
    is part of the command line from then on.
    """
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
        # Plain help: the rich layout prints a "<bool>" placeholder after every flag.
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.command("run")(with_flag_groups(run_command))
    app.command("bench")(with_flag_groups(bench_command))
    app.command("compile")(compile_command)
    app.command("report")(report_command)
    app.command("batch")(with_flag_groups(batch_command))
    app.command("info")(info_command)
    return app


def with_default_command(args: Sequence[str]) -> list[str]:
    """Insert ``run`` unless the first argument is a subcommand.

    ``fer-live --help`` thus shows every run option (and names the other commands).
    """
    args = list(args)
    if args and args[0] in SUBCOMMANDS:
        return args
    return ["run", *args]


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


def _error(message: str | BaseException) -> None:
    """One ``error:`` line; an exception's notes (where partial outputs went) join it."""
    notes = getattr(message, "__notes__", None) or []
    text = "; ".join([str(message), *notes])
    sys.stderr.write("error: " + " ".join(text.split()) + "\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fer-live`` script; returns the exit code.

    Args:
        argv: Arguments without the program name; None reads ``sys.argv``.
    """
    reopen_closed_std_streams()  # before any output file could take descriptor 1 or 2
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        _quiet_native_logs()
        _single_threaded_blas()
        command = typer.main.get_command(make_app())
        result = command.main(
            args=with_default_command(argv),
            prog_name="fer-live",
            standalone_mode=False,
            obj={"argv": argv},
        )
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        return _interrupted(KeyboardInterrupt())
    except TyperException as exc:
        _error(exc.format_message())
        return exc.exit_code
    except ConfigError as exc:
        _error(exc)
        return 2
    except FerLiveError as exc:
        _error(exc)
        return 1
    except KeyboardInterrupt as exc:
        return _interrupted(exc)
    return int(result) if isinstance(result, int) else 0


def _interrupted(exc: KeyboardInterrupt) -> int:
    """One line and 128 + the signal (``fer_live.commands.signals.Interrupted`` carries which).

    The fer-live script exits at once on a signal before the outputs open
    (fer_live.commands.signals); this covers callers of ``main`` in a program of their own.
    """
    signum = int(getattr(exc, "signum", signal.SIGINT))
    _error(describe(signum))
    return exit_code(signum)


def default_bench_dir() -> Path:
    """``$XDG_DATA_HOME/fer-live/bench`` (``~/.local/share/...``): never inside a checkout."""
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "fer-live" / "bench"


def check_writable_dir(path: Path, flag: str) -> None:
    """Create ``path`` and write a scratch file in it, so a bad folder fails before the work.

    Raises:
        ConfigError: Naming the flag, the folder and the reason.
    """
    import tempfile

    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".fer-live-check-"):
            pass
    except OSError as exc:
        raise ConfigError(f"{flag} '{path}' is not a writable folder: {exc.strerror}") from None


def run_bench(
    config: LiveConfig, results_dir: Path | None, command: list[str], vs_smooth: str | None = None
) -> int:
    """Check the results folder, run the benchmark, print its table and save the JSON result.

    With ``vs_smooth``, also compare the run's smoother with that one
    (``fer_live.commands.bench_smooth``).
    """
    from rich.console import Console

    from fer_live.commands.bench import report_table, run_benchmark, save_result

    results_dir = default_bench_dir() if results_dir is None else results_dir
    check_writable_dir(results_dir, "--results-dir")
    result = run_benchmark(config, command)
    console = Console()
    console.print(report_table(result))
    if vs_smooth is not None:
        from fer_live.commands.bench_smooth import compare_smoothing, compare_table, ratio_line

        result["smooth_compare"] = compare_smoothing(config, vs_smooth)
        console.print(compare_table(result["smooth_compare"]))
        console.print(ratio_line(result["smooth_compare"]))
    path = save_result(result, results_dir)
    console.print(f"saved {path}", soft_wrap=True)
    return 0


def print_info() -> None:
    """Versions, backends and devices as a rich table on stdout."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from fer_live.commands.bench import device_info, versions
    from fer_live.infer.assets import default_model_path, describe_model, shipped_models
    from fer_live.infer.backends import auto_summary, available_backends

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
