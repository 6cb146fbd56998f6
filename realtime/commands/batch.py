"""``fer-live batch``: many videos into one folder, resumable, on local workers or on Ray.

The command's flags (``BatchFlags``) join ``run``'s stage flags in ``app.batch_command``, which
parses them once into a ``LiveConfig``; ``run_batch`` expands the inputs, plans what is left,
runs it with a progress display (a bar for the job, a line per worker) and prints the outcome.

Exit codes: 0 every input is done (now or in an earlier run), 1 an input failed (or a worker
could not load the model), 2 bad usage (no inputs, a bad flag, the folder is busy), 130 / 143
interrupted by Ctrl-C / SIGTERM (the finished inputs are kept; a rerun does the rest).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from fer_live.config import LiveConfig
from fer_live.errors import ConfigError

logger = logging.getLogger(__name__)

_RAY_ADDRESS = re.compile(r"^(auto|ray://\S+|[\w.-]+:\d+)$")

InputsArg = Annotated[
    list[str],
    typer.Argument(
        metavar="INPUTS",
        help="Video files, folders (searched for videos), globs, or .txt/.csv lists of paths "
        "and URLs.",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class BatchFlags:
    """The flags of ``batch`` that ``run`` does not have."""

    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-d", help="The job's folder (required): outputs per input, job.json, job.csv."
        ),
    ] = None
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            help="Worker processes (default: usable cores; with --ray: the "
            "cluster's CPUs / --cpus-per-worker).",
        ),
    ] = None
    ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="Run on Ray (fer-live[ray]): start it on this machine, or join the cluster "
            "--ray-address or RAY_ADDRESS names.",
        ),
    ] = False
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Join this Ray cluster (auto, host:6379, ray://host:10001); implies --ray.",
        ),
    ] = None
    cpus_per_worker: Annotated[
        float, typer.Option("--cpus-per-worker", help="Ray: CPUs each worker reserves.")
    ] = 1.0
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Also redo inputs that failed before.")
    ] = False
    csv: Annotated[bool, typer.Option("--csv", help="Also write <name>.csv per input.")] = False
    video: Annotated[
        bool, typer.Option("--video", help="Also write the annotated <name>.mp4 per input.")
    ] = False

    def __post_init__(self) -> None:
        if self.out is None:
            raise ConfigError("--out DIR is required: the job's folder")
        if self.jobs is not None and not 1 <= self.jobs <= 1024:
            raise ConfigError(f"--jobs must be in [1, 1024], got {self.jobs}")
        if not 0 < self.cpus_per_worker <= 1024:
            raise ConfigError(f"--cpus-per-worker must be in (0, 1024], got {self.cpus_per_worker}")
        if self.ray_address is not None and not _RAY_ADDRESS.match(self.ray_address):
            raise ConfigError(
                f"--ray-address '{self.ray_address}' is not a Ray address (auto, host:6379, "
                "ray://host:10001)"
            )


def job_settings(config: LiveConfig, flags: BatchFlags) -> dict[str, Any]:
    """What shapes an input's outputs (its records, CSV and video): the fingerprint's input.

    Raises:
        ModelError: The model file is missing (before any work).
    """
    from fer_live import __version__
    from fer_live.infer.assets import resolve_model_path
    from fer_live.jobs.state import input_id

    model = resolve_model_path(config.backend.model, config.backend.backend)
    settings = asdict(config)
    settings.pop("capture")
    settings["backend"].pop("threads")  # the thread count does not change the records
    settings.pop("output")
    return {
        "fer_live": __version__,
        "model_file": f"{model}:{input_id(str(model))}",  # a model replaced in place redoes all
        "max_frames": config.capture.max_frames,
        "csv": flags.csv,
        "video": flags.video,
        **settings,
    }


def run_batch(inputs: list[str], flags: BatchFlags, config: LiveConfig, threads: bool) -> int:
    """Expand, plan and run the job; print its outcome. Returns the exit code.

    Args:
        inputs: The INPUTS arguments.
        flags: ``batch``'s own flags.
        config: The ``run`` flags, parsed (the source is set per input).
        threads: ``--threads`` was given (else each worker uses one inference thread).
    """
    from fer_live.commands.signals import exit_code, graceful_stop
    from fer_live.jobs.driver import (
        default_jobs,
        earlier_names,
        job_folder,
        new_run_id,
        plan_job,
        run_job,
    )
    from fer_live.jobs.inputs import expand_inputs
    from fer_live.jobs.state import settings_fingerprint
    from fer_live.jobs.work import WorkSettings

    if flags.ray or flags.ray_address is not None:  # a missing extra fails before any work
        from fer_live.jobs.ray_runner import import_ray

        import_ray()
    if not threads:
        config = replace(config, backend=replace(config.backend, threads=1))
    meta = job_settings(config, flags)
    out = Path(flags.out or ".")
    with job_folder(out):
        items = expand_inputs(inputs, earlier_names(out))
        settings = WorkSettings(
            config, out, flags.csv, flags.video, settings_fingerprint(meta), new_run_id()
        )
        plan = plan_job(items, settings, flags.retry_failed)
        for name, why in plan.redo.items():
            logger.warning("redoing %s: %s", name, why)
        if not plan.todo:
            return _nothing_to_do(plan.results.values(), out)
        runner = _runner(settings, flags, len(plan.todo), default_jobs())
        start = time.perf_counter()
        with graceful_stop() as stop, BatchProgress(len(items), plan) as view:
            view.workers(runner.workers)
            results = run_job(plan, settings, runner, meta, view, stop.event)
        wall_s = time.perf_counter() - start
    _print_outcome(results, wall_s, out, stop.signum)
    if stop.signum is not None:
        return exit_code(stop.signum)
    return 1 if any(r.status == "failed" for r in results) else 0


def _runner(settings: Any, flags: BatchFlags, todo: int, cores: int) -> Any:
    if flags.ray or flags.ray_address is not None:
        from fer_live.jobs.ray_runner import RayRunner

        return RayRunner(settings, flags.ray_address, flags.jobs, flags.cpus_per_worker)
    from fer_live.jobs.local import LocalRunner

    return LocalRunner(settings, min(flags.jobs or cores, todo))


def _nothing_to_do(results: Any, out: Path) -> int:
    from rich.console import Console

    results = list(results)
    done = sum(r.status == "skipped" for r in results)
    failed = [r for r in results if r.status == "failed"]
    line = f"nothing to do: {done} of {len(results)} inputs already done (checked) in '{out}'"
    if failed:
        line += f"; {len(failed)} failed before (--retry-failed tries them again)"
    Console(stderr=True).print(line, soft_wrap=True, markup=False, highlight=False)
    return 1 if failed else 0


def _print_outcome(results: list[Any], wall_s: float, out: Path, signum: int | None) -> None:
    from rich.console import Console

    from fer_live.commands.signals import describe

    console = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)
    ran = [r for r in results if r.status == "done"]
    frames = sum(r.frames for r in ran)
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
    pending = len(results) - sum(counts.values())
    line = (
        f"{counts['done']} done, {counts['skipped']} skipped (done before), "
        f"{counts['failed']} failed"
        + (f", {pending} left" if pending else "")
        + f" in {wall_s:.1f} s; {frames} frames ({frames / wall_s if wall_s else 0:.1f} FPS)"
    )
    for r in results:
        if r.status == "failed":
            console.print(f"failed: {r.source}: {r.error}")
    console.print(line + (f"; {describe(signum)}" if signum is not None else ""))
    console.print(f"job record: {out / 'job.csv'}, {out / 'job.json'}")


class BatchProgress:
    """The job's progress: inputs done with the frame rate and ETA, and a line per worker."""

    def __init__(self, total: int, plan: Any) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        done = sum(r.status in ("skipped", "failed") for r in plan.results.values())
        self._job = self._progress.add_task("inputs", total=total, completed=done, rate="")
        self._lines: dict[int, Any] = {}
        self._frames: dict[int, int] = {}
        self._finished_frames = 0
        self._start = time.perf_counter()

    def __enter__(self) -> BatchProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def workers(self, count: int) -> None:
        for worker in range(count):
            self._lines[worker] = self._progress.add_task(
                f"  worker {worker}: starting", total=None, rate=""
            )

    def _line(self, worker: int) -> Any:
        if worker not in self._lines:
            self._lines[worker] = self._progress.add_task(f"  worker {worker}", total=None, rate="")
        return self._lines[worker]

    def started(self, worker: int, item: Any) -> None:
        self._frames[worker] = 0
        task = self._line(worker)
        self._progress.reset(
            task, total=None, description=f"  worker {worker}: {item.name}", rate=""
        )

    def advanced(self, worker: int, frames: int, total: int | None) -> None:
        self._frames[worker] = frames
        self._progress.update(self._line(worker), completed=frames, total=total)
        self._rate()

    def finished(self, worker: int, item: Any, result: Any) -> None:
        self._frames[worker] = 0
        self._finished_frames += result.frames if result.status == "done" else 0
        if result.status != "pending":
            self._progress.advance(self._job)
        self._progress.reset(self._line(worker), total=None, description=f"  worker {worker}: idle")
        self._rate()

    def _rate(self) -> None:
        frames = self._finished_frames + sum(self._frames.values())
        elapsed = time.perf_counter() - self._start
        fps = frames / elapsed if elapsed > 0 else 0.0
        self._progress.update(self._job, rate=f"{fps:.1f} FPS")
