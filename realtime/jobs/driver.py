"""A batch job from start to end: lock the folder, plan what is left, run it, keep the record.

``plan_job`` checks every input against its folder (``state.verify_done``): done inputs are
skipped, failed ones too unless retried, the rest (new, partial, made with other settings) are
to do. ``run_job`` hands those to a runner (``local.LocalRunner`` or ``ray_runner.RayRunner``)
and writes ``job.json``/``job.csv`` as results arrive, and the job's summary of all tracks at
the end. Only the driver writes those files; workers write only their inputs' folders.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Protocol

from fer_live.errors import ConfigError
from fer_live.jobs.inputs import JobInput
from fer_live.jobs.state import (
    COMPLETE,
    FAILED,
    PENDING,
    SKIPPED,
    InputResult,
    load_job,
    remove_stale_temps,
    verify_done,
    write_atomic,
    write_job,
)
from fer_live.jobs.work import WORK_DIR, WorkSettings

logger = logging.getLogger(__name__)

JOB_SUMMARY = "summary.csv"
LOCK = ".lock"
# job.json is rewritten at most this often while results arrive (and always at the end): each
# input's own manifest is its durable record, so nothing is lost in between.
_WRITE_EVERY_S = 1.0


class Events(Protocol):
    """What a runner reports while it works (the progress display listens)."""

    def started(self, worker: int, item: JobInput) -> None: ...

    def advanced(self, worker: int, frames: int, total: int | None) -> None: ...

    def finished(self, worker: int, item: JobInput, result: InputResult) -> None: ...


class Runner(Protocol):
    """Runs inputs on workers until all are done or ``stop`` is set."""

    workers: int

    def run(self, todo: Sequence[JobInput], events: Events, stop: threading.Event) -> None: ...


@dataclass
class Plan:
    """The job's inputs, what each one is now, and which are left to do."""

    inputs: list[JobInput]
    results: dict[str, InputResult] = field(default_factory=dict)
    todo: list[JobInput] = field(default_factory=list)
    redo: dict[str, str] = field(default_factory=dict)  # name -> why its outputs are redone


def earlier_names(out_dir: Path) -> dict[str, str]:
    """key -> output name, from the folder's ``job.json`` (names stay put across runs)."""
    return {key: str(row["name"]) for key, row in load_job(out_dir).items() if "name" in row}


def plan_job(inputs: Sequence[JobInput], settings: WorkSettings, retry_failed: bool) -> Plan:
    """What each input is now: skipped (done and checked), failed (kept unless retried) or to do."""
    earlier = load_job(settings.out_dir)
    plan = Plan(list(inputs))
    for item in inputs:
        done, why = verify_done(settings.out_dir / item.name, settings.fingerprint, item.source)
        row = earlier.get(item.key, {})
        if done is not None:
            plan.results[item.key] = replace(done, status=SKIPPED, wall_s=0.0)
        elif row.get("status") == FAILED and not retry_failed:
            plan.results[item.key] = InputResult(
                item.name, item.source, FAILED, error=str(row.get("error", ""))
            )
        else:
            plan.results[item.key] = InputResult(item.name, item.source, PENDING)
            plan.todo.append(item)
            if why:
                plan.redo[item.name] = why
    return plan


@contextmanager
def job_folder(out_dir: Path) -> Iterator[None]:
    """Hold the job folder's lock and clear what killed runs left in its staging area.

    Raises:
        ConfigError: The folder cannot be made, or another job holds it.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        handle: IO[str] = open(out_dir / LOCK, "a+")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise ConfigError(f"--out '{out_dir}' is not a writable folder: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(f"another batch job is running in '{out_dir}'") from None
        shutil.rmtree(out_dir / WORK_DIR, ignore_errors=True)  # staging of killed runs
        remove_stale_temps(out_dir)  # a job.json half written when its job was killed
        yield
    finally:
        handle.close()


class _Recorder:
    """Applies results to the plan, rewrites the job files now and then, and passes events on."""

    def __init__(self, plan: Plan, settings: WorkSettings, meta: Mapping[str, Any], ui: Events):
        self.plan, self.settings, self.meta, self.ui = plan, settings, meta, ui
        self._written = 0.0
        self._lock = threading.Lock()

    def started(self, worker: int, item: JobInput) -> None:
        self.ui.started(worker, item)

    def advanced(self, worker: int, frames: int, total: int | None) -> None:
        self.ui.advanced(worker, frames, total)

    def finished(self, worker: int, item: JobInput, result: InputResult) -> None:
        with self._lock:
            self.plan.results[item.key] = result
            if time.monotonic() - self._written >= _WRITE_EVERY_S:
                self.write()
        self.ui.finished(worker, item, result)

    def write(self) -> None:
        ordered = [(i.key, self.plan.results[i.key]) for i in self.plan.inputs]
        write_job(self.settings.out_dir, ordered, self.meta)
        self._written = time.monotonic()


def run_job(
    plan: Plan,
    settings: WorkSettings,
    runner: Runner,
    meta: Mapping[str, Any],
    ui: Events,
    stop: threading.Event,
) -> list[InputResult]:
    """Run what the plan has to do and keep the job's record; returns every input's result.

    Raises:
        FerLiveError: A worker could not load the model or the folder is not writable.
    """
    recorder = _Recorder(plan, settings, meta, ui)
    recorder.write()
    try:
        if plan.todo:
            runner.run(plan.todo, recorder, stop)
    finally:
        recorder.write()
        write_job_summary(settings.out_dir, plan)
        shutil.rmtree(settings.staging_root, ignore_errors=True)
        with contextlib.suppress(OSError):  # only when empty: another run may stage there
            settings.staging_root.parent.rmdir()
    return [plan.results[i.key] for i in plan.inputs]


def write_job_summary(out_dir: Path, plan: Plan) -> None:
    """``summary.csv``: the per-track summaries of every finished input, with its name first."""
    header: list[str] | None = None
    rows: list[list[str]] = []
    for item in plan.inputs:
        if plan.results[item.key].status not in COMPLETE:
            continue
        path = out_dir / item.name / f"{item.name}.summary.csv"
        try:
            table = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
        except OSError:
            continue
        if not table:
            continue
        header = header or ["input", *table[0]]
        rows += [[item.name, *row] for row in table[1:]]
    if header is None:
        return
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    write_atomic(out_dir / JOB_SUMMARY, buffer.getvalue())


def default_jobs() -> int:
    """Usable cores (the affinity mask, which containers and ``taskset`` narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return max(1, os.cpu_count() or 1)


def new_run_id() -> str:
    return f"{os.getpid()}-{time.time_ns()}"
