"""One input -> its outputs, with the model and the detector loaded once per worker.

``Worker`` runs the same source, stages, sinks and loop as ``fer-live -s VIDEO --jsonl``
(``fer_live.commands.run``), so an input's records are the bytes that command writes. It writes
into a staging folder ``DIR/.work/<run id>/<name>/``, adds the per-track summary and a manifest
of every file's size and SHA-256, and renames the folder to ``DIR/<name>`` only then: a killed
worker leaves a staging folder, which the next run removes, never half an input.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fer_live.config import LiveConfig
from fer_live.errors import FerLiveError, first_line
from fer_live.jobs.inputs import JobInput
from fer_live.jobs.state import (
    DONE,
    FAILED,
    MANIFEST,
    PENDING,
    InputResult,
    file_digest,
    input_id,
    write_atomic,
)

logger = logging.getLogger(__name__)

WORK_DIR = ".work"
# Progress: called with (frames done, frames expected or None).
Progress = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class WorkSettings:
    """What every worker of a job needs (plain, picklable values).

    Attributes:
        config: The ``run`` flags; ``capture.source`` is set per input.
        out_dir: The job's folder.
        csv: Also write ``<name>.csv``.
        video: Also write the annotated ``<name>.mp4``.
        fingerprint: The settings' digest, stored in each manifest (``settings_fingerprint``).
        run_id: This run's staging folder under ``DIR/.work``.
    """

    config: LiveConfig
    out_dir: Path
    csv: bool = False
    video: bool = False
    fingerprint: str = ""
    run_id: str = "run"

    @property
    def staging_root(self) -> Path:
        return self.out_dir / WORK_DIR / self.run_id


def output_files(name: str, csv: bool, video: bool) -> dict[str, str]:
    """Output format -> file name in the input's folder (the summary is added after the run)."""
    files = {"jsonl": f"{name}.jsonl"}
    if csv:
        files["csv"] = f"{name}.csv"
    if video:
        files["video"] = f"{name}.mp4"
    return files


class Worker:
    """The model and the video detector of one worker, used for input after input.

    Raises:
        ModelError: The model is missing or broken.
        BackendUnavailable: The backend or device is not available here.
    """

    def __init__(self, settings: WorkSettings) -> None:
        from fer_live.detect.table import open_detector
        from fer_live.infer.assets import resolve_model_path
        from fer_live.infer.backends import open_backend

        self.settings = settings
        cfg = settings.config.backend
        self._stack = ExitStack()
        self.model = resolve_model_path(cfg.model, cfg.backend)
        self.backend = self._stack.enter_context(
            open_backend(self.model, cfg.backend, cfg.device, cfg.threads)
        )
        det = settings.config.detect
        self.faces = open_detector(
            det.detector, min_score=det.min_score, max_faces=det.max_faces, stills=False
        )
        self._stack.callback(self.faces.close)
        self.labels = tuple(self.backend.card.labels)

    def close(self) -> None:
        self._stack.close()

    def process(
        self,
        item: JobInput,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> InputResult:
        """Process one input into ``DIR/<name>/``; never raises for a bad input.

        Returns:
            ``done`` with its counts and files, ``failed`` with a one-line error, or ``pending``
            when ``stop`` ended it early (its outputs are then dropped).
        """
        staging = self.settings.staging_root / item.name
        start = time.perf_counter()
        try:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            result = self._run(item, staging, progress, stop)
            if result.status == DONE:
                commit_folder(staging, self.settings.out_dir / item.name)
            return replace(result, wall_s=time.perf_counter() - start)
        except FerLiveError as exc:
            return _failed(item, " ".join(first_line(exc).split()))
        except Exception as exc:  # a decoder or library error on one input must not end the job
            logger.debug("input %s failed", item.source, exc_info=True)
            return _failed(item, f"{type(exc).__name__}: {' '.join(first_line(exc).split())}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _run(
        self,
        item: JobInput,
        staging: Path,
        progress: Progress | None,
        stop: threading.Event | None,
    ) -> InputResult:
        from fer_live.capture.sources import open_source
        from fer_live.outputs.base import SinkSettings, committed_together
        from fer_live.outputs.render import OverlayRenderer
        from fer_live.outputs.table import open_sinks
        from fer_live.pipeline import process, stages_around

        s = self.settings
        identity = input_id(item.source)
        names = output_files(item.name, s.csv, s.video)
        files = {fmt: staging / name for fmt, name in names.items()}
        with ExitStack() as stack:
            source = stack.enter_context(open_source(item.source, s.config.capture.max_frames, 0))
            config = s.config.for_source(source.live, source.still)
            stages = stack.enter_context(
                stages_around(self.backend, self.model, config, self.faces)
            )
            run = SinkSettings(
                self.labels,
                source.fps,
                live=source.live,
                still=source.still,
                inputs=tuple(source.input_files),
                audio=source.audio_file,
            )
            sinks = stack.enter_context(committed_together(open_sinks(files, run, False)))
            total = source.expected_frames
            seen = [0]

            def advance(result: Any) -> None:
                seen[0] += 1
                if progress is not None:
                    progress(seen[0], total)

            renderer = OverlayRenderer(self.labels)
            summary = process(source, stages, sinks, renderer, advance, stop)
            fps = source.fps
        if summary.interrupted:
            return InputResult(item.name, item.source, PENDING)
        faces, tracks = write_summary(
            files["jsonl"], staging / f"{item.name}.summary.csv", self.labels
        )
        digests = {p.name: file_digest(p) for p in sorted(staging.iterdir()) if p.is_file()}
        result = InputResult(
            item.name,
            item.source,
            DONE,
            frames=summary.frames,
            faces=faces,
            tracks=tracks,
            duration_s=summary.frames / fps if fps else 0.0,
            wall_s=summary.wall_s,
            fps=summary.fps,
            files=digests,
            fingerprint=s.fingerprint,
            input_id=identity,
        )
        write_atomic(staging / MANIFEST, json.dumps(result.to_json(), indent=2) + "\n")
        return result


def write_summary(records: Path, out: Path, labels: tuple[str, ...]) -> tuple[int, int]:
    """Write the per-track summary of a records file (``fer-live report``'s summary.csv).

    Returns:
        (face records, tracks).
    """
    from fer_live.report.read import RecordsError, read_records
    from fer_live.report.summary import csv_text, summarize_all

    try:
        data = read_records(records)
    except RecordsError:  # no face in the whole video: a summary with no rows
        write_atomic(out, csv_text([], labels))
        return 0, 0
    summaries = summarize_all(data)
    write_atomic(out, csv_text(summaries, data.labels))
    return sum(s.records for s in summaries), len(summaries)


def commit_folder(staging: Path, final: Path) -> None:
    """Put a finished input's folder in place: the old one (if any) aside, the new one in, the
    old one removed. Each step is one rename, so a kill between them leaves no mixed folder."""
    old = staging.with_name(staging.name + ".old")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def _failed(item: JobInput, error: str) -> InputResult:
    return InputResult(item.name, item.source, FAILED, error=error or "failed")
