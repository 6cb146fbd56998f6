"""``fer-live bench``: per-stage latency, end-to-end FPS and its ceilings, in one run.

Three passes over the same source: decode only, decode + detect (the ceilings the pipeline can
at best reach), then the full pipeline. The pipeline's own overhead is the share of wall time
spent outside decode, detect and infer (tracking, cropping, smoothing, drawing, writing, glue).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

import numpy as np

from fer_live.capture.redact import mask_url
from fer_live.capture.sources import open_source, source_kind
from fer_live.config import LiveConfig
from fer_live.errors import ConfigError
from fer_live.infer.assets import resolve_model_path
from fer_live.infer.card import sha256_file
from fer_live.outputs.base import SinkSettings, committed_together
from fer_live.outputs.render import OverlayRenderer
from fer_live.outputs.table import OUTPUT_FORMATS, open_sinks
from fer_live.pipeline import MESH_STAGE, STAGES, open_stages, process
from fer_live.types import FrameResult

logger = logging.getLogger(__name__)


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 and mean of a list of milliseconds (zeros when empty)."""
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0}
    arr = np.asarray(values, np.float64)
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {"p50": p50, "p95": p95, "p99": p99, "mean": float(arr.mean())}


def decode_fps(config: LiveConfig) -> float:
    """Frames per second of reading the source alone."""
    cap = config.capture
    with open_source(cap.source, cap.max_frames, cap.reconnect_attempts) as source:
        start, frames = time.perf_counter(), 0
        for _ in source:
            frames += 1
        return frames / max(time.perf_counter() - start, 1e-9)


def detect_fps(config: LiveConfig) -> float:
    """Frames per second of reading plus face detection as the pipeline runs it.

    Video frames go through the same plan as in the pipeline (tiles and detect interval from
    the frame size or the flags), still images through the tiled detector on every image.
    """
    from fer_live.detect.plan import PlannedDetector
    from fer_live.detect.table import open_detector

    cap = config.capture
    with open_source(cap.source, cap.max_frames, cap.reconnect_attempts) as source:
        det = config.for_source(source.live, source.still).detect
        faces = open_detector(
            det.detector, min_score=det.min_score, max_faces=det.max_faces, stills=det.stills
        )
        with closing(faces):
            planned = PlannedDetector(faces, det.tiles, det.every)
            start, frames = time.perf_counter(), 0
            for frame in source:
                if det.stills:
                    faces.detect(frame, det.tiles)
                else:
                    planned.detect(frame)
                frames += 1
            return frames / max(time.perf_counter() - start, 1e-9)


def pipeline_pass(config: LiveConfig) -> dict[str, Any]:
    """Run the full pipeline once; per-stage latency lists, frames, wall time and model info."""
    cap = config.capture
    timings: dict[str, list[float]] = {stage: [] for stage in stages_of(config)}
    faces: list[int] = []
    track_ids: set[int] = set()

    def collect(result: FrameResult) -> None:
        for stage in timings:
            timings[stage].append(result.timings_ms.get(stage, 0.0))
        faces.append(len(result.tracks))
        track_ids.update(int(t) for t in result.tracks.track_id)

    with ExitStack() as stack:
        source = stack.enter_context(
            open_source(cap.source, cap.max_frames, cap.reconnect_attempts)
        )
        config = config.for_source(source.live, source.still)
        stages = stack.enter_context(open_stages(config))
        card = stages.backend.card
        run = SinkSettings(
            card.labels,
            source.fps or 30.0,
            inputs=tuple(source.input_files),
            audio=source.audio_file,
            hud=config.output.hud,
            min_confidence=config.output.min_confidence,
            face_mesh=config.mesh.enabled,
        )
        opened = open_sinks(config.output.files, run, window=False)
        sinks = stack.enter_context(committed_together(opened))
        cpu_start = time.process_time()
        renderer = OverlayRenderer(card.labels, min_confidence=config.output.min_confidence)
        summary = process(source, stages, sinks, renderer, collect)
        cpu_s = time.process_time() - cpu_start
        backend = {"name": stages.backend.name, "device": stages.backend.device}
    return {
        "timings": timings,
        "summary": summary,
        "card": card,
        "backend": backend,
        "faces": faces,
        "track_ids": len(track_ids),
        "cpu_s": cpu_s,
    }


def stages_of(config: LiveConfig) -> tuple[str, ...]:
    """The stages a run with ``config`` times, in pipeline order (the face mesh after track)."""
    if not config.mesh.enabled:
        return STAGES
    at = STAGES.index("track") + 1
    return (*STAGES[:at], MESH_STAGE, *STAGES[at:])


def mesh_per_face(mesh_ms: Sequence[float], faces: Sequence[int]) -> dict[str, float]:
    """The face mesh's milliseconds per face: p50/p95/p99/mean over the frames with a face, and
    ``overall`` = all its time over all the faces it measured."""
    per_face = [ms / n for ms, n in zip(mesh_ms, faces, strict=True) if n]
    return {**percentiles(per_face), "overall": sum(mesh_ms) / max(sum(faces), 1)}


def run_benchmark(config: LiveConfig, command: Sequence[str]) -> dict[str, Any]:
    """Measure decode, decode+detect and full-pipeline speed on the same source.

    Args:
        config: The run configuration (source, model, outputs).
        command: The command line, recorded in the result.

    Returns:
        A JSON-ready dict: per-stage p50/p95/p99 (ms), FPS figures, ratios, overhead share,
        device, versions, model and command. URLs in the source, config and command are masked
        (passwords and tokens never reach a results file).
    """
    if source_kind(config.capture.source) in ("camera", "url") and not config.capture.max_frames:
        raise ConfigError("bench needs a file --source, or --max-frames for a camera or stream")
    decode = decode_fps(config)
    detect = detect_fps(config)
    run = pipeline_pass(config)
    summary = run["summary"]
    stages = {k: percentiles(v) for k, v in run["timings"].items()}
    busy_ms = sum(sum(run["timings"][k]) for k in ("decode", "detect", "infer"))
    wall_ms = summary.wall_s * 1000.0
    model = resolve_model_path(config.backend.model, config.backend.backend)
    mesh = run["timings"].get(MESH_STAGE)
    return {
        "source": mask_url(config.capture.source),
        "frames": summary.frames,
        "face_frames": summary.face_frames,
        "faces": {
            "per_frame": float(np.mean(run["faces"])) if run["faces"] else 0.0,
            "min_per_frame": int(min(run["faces"], default=0)),
            "track_ids": run["track_ids"],
            "per_second": sum(run["faces"]) / summary.wall_s if summary.wall_s > 0 else 0.0,
        },
        "fps": {
            "end_to_end": summary.fps,
            "decode_only": decode,
            "decode_detect": detect,
            "ratio_to_decode": summary.fps / decode if decode else 0.0,
            "ratio_to_decode_detect": summary.fps / detect if detect else 0.0,
        },
        # CPU time of all the process's threads: what a frame costs, whatever else runs.
        "cpu_ms_per_frame": 1000.0 * run["cpu_s"] / max(summary.frames, 1),
        "overhead_share": max(0.0, (wall_ms - busy_ms) / wall_ms) if wall_ms else 0.0,
        "stages_ms": stages,
        # the face mesh's cost per face (--face-mesh); None without it
        "mesh_ms_per_face": None if mesh is None else mesh_per_face(mesh, run["faces"]),
        "outputs": _outputs(config),
        "model": {"path": str(model), "name": run["card"].name, "sha256": sha256_file(model)},
        "backend": run["backend"],
        "config": _masked_config(config),
        "device": device_info(),
        "versions": versions(),
        "command": mask_url(" ".join(command)),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _outputs(config: LiveConfig) -> dict[str, Any]:
    """Each output format's path (None when not written) and ``hud``."""
    files = config.output.files
    paths = {name: str(files[name]) if name in files else None for name in OUTPUT_FORMATS}
    return {**paths, "hud": config.output.hud}


def _masked_config(config: LiveConfig) -> dict[str, Any]:
    resolved = config.to_dict()
    resolved["capture"]["source"] = mask_url(config.capture.source)
    return resolved


def save_result(result: dict[str, Any], results_dir: Path) -> Path:
    """Write the result as ``pipeline_<source>_<time>.json`` under ``results_dir``."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(result["source"]).stem or "source"
    path = results_dir / f"pipeline_{stem}_{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2, default=float) + "\n")
    return path


def device_info() -> dict[str, Any]:
    """CPU model and core count (and the GPU name when torch sees one)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cpu_cores": usable, "platform": platform.platform()}


def versions() -> dict[str, str]:
    """Versions of Python and of the packages the pipeline uses."""
    import importlib.metadata as md

    found = {"python": sys.version.split()[0]}
    for dist in ("fer-live", "numpy", "opencv-contrib-python", "mediapipe", "onnxruntime", "av"):
        try:
            found[dist] = md.version(dist)
        except md.PackageNotFoundError:
            found[dist] = "not installed"
    return found


def report_table(result: dict[str, Any]) -> Any:
    """A rich Table of a benchmark result (the CLI prints it)."""
    from rich.table import Table

    fps = result["fps"]
    name = Path(result["source"]).name
    table = Table(title=f"fer-live bench: {name}, {result['frames']} frames")
    for column in ("stage", "p50 ms", "p95 ms", "p99 ms", "mean ms"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage, stats in result["stages_ms"].items():
        table.add_row(stage, *(f"{stats[k]:.2f}" for k in ("p50", "p95", "p99", "mean")))
    table.add_section()
    table.add_row("end-to-end FPS", f"{fps['end_to_end']:.1f}")
    table.add_row("decode-only FPS", f"{fps['decode_only']:.1f}", f"x{fps['ratio_to_decode']:.2f}")
    table.add_row(
        "decode+detect FPS", f"{fps['decode_detect']:.1f}", f"x{fps['ratio_to_decode_detect']:.2f}"
    )
    table.add_row("pipeline overhead", f"{100 * result['overhead_share']:.1f} %")
    table.add_row("CPU ms per frame", f"{result['cpu_ms_per_frame']:.1f}")
    faces = result["faces"]
    table.add_row("faces per frame", f"{faces['per_frame']:.2f}", f"min {faces['min_per_frame']}")
    table.add_row("track ids", str(faces["track_ids"]))
    table.add_row("faces per second", f"{faces['per_second']:.0f}")
    per_face = result.get("mesh_ms_per_face")
    if per_face is not None:
        cells = (f"{per_face[k]:.2f}" for k in ("p50", "p95", "p99", "mean"))
        table.add_row("face mesh ms per face", *cells)
    return table
