"""One live run: open the source, the stages and the outputs, process, and report.

The outputs open only after the stop signals are set to finish the current frame
(``fer_live.commands.signals``), and a window is shown only when a child process could open one
(``fer_live.outputs.display``), so no run leaves a half-written file or dies on a stale DISPLAY.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from contextlib import ExitStack, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

from fer_live.commands.signals import describe, exit_code, graceful_stop, ignore_stop_signals
from fer_live.config import LiveConfig
from fer_live.errors import ConfigError
from fer_live.types import Device

logger = logging.getLogger(__name__)


def _progress(total: int | None, enabled: bool, still: bool) -> Any:
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
        *([] if still else [TextColumn("{task.fields[fps]:.1f} FPS")]),  # no rate for photos
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    return Progress(*columns, console=Console(stderr=True), disable=not enabled, transient=False)


def run_live(config: LiveConfig) -> int:
    """Open the source, stages and sinks, process until the end or a stop signal, and report.

    Returns:
        0 at the end of the stream, on ``q``/Esc or when the window is closed; 128 + the
        signal after SIGINT (130), SIGTERM (143) or SIGHUP (129).
    """
    from fer_live.capture.sources import open_source
    from fer_live.outputs.base import NullSink, SinkSettings, committed_together
    from fer_live.outputs.render import OverlayRenderer
    from fer_live.outputs.table import open_sinks
    from fer_live.pipeline import RateMeter, open_stages, process

    cap = config.capture
    _check_device(config.backend.device)
    with ExitStack() as stack:
        probe = _start_window_probe(config)
        if probe is not None:
            stack.callback(probe.close)
        source = stack.enter_context(
            open_source(cap.source, cap.max_frames, cap.reconnect_attempts)
        )
        config = config.for_source(source.live, source.still)
        stages = stack.enter_context(open_stages(config))
        labels = stages.backend.card.labels
        config = _headless_unless_window(config, probe)
        stop = stack.enter_context(graceful_stop())
        run = SinkSettings(
            labels,
            source.fps,
            live=source.live,
            still=source.still,
            inputs=tuple(source.input_files),
            audio=source.audio_file,
            hud=config.output.hud,
            min_confidence=config.output.min_confidence,
            face_mesh=config.mesh.enabled,
        )
        opened = open_sinks(config.output.files, run, config.output.show_window)
        # a failed run keeps its outputs under partial names; only a whole run replaces files
        sinks = stack.enter_context(committed_together(opened))
        if all(isinstance(s, NullSink) for s in sinks):
            logger.warning(
                "no window (no display or --headless) and no -o/--jsonl/--csv/--events: "
                "results are not kept"
            )
        total = source.expected_frames
        progress = stack.enter_context(_progress(total, not source.live, source.still))
        task = progress.add_task(Path(source.source_id).name, total=total, fps=0.0)
        meter = RateMeter()

        def advance(result: Any) -> None:
            meter.tick(result.timings_ms)
            done = _done(meter.frames, source.skipped, total)
            progress.update(task, completed=done, fps=meter.fps)

        renderer = OverlayRenderer(labels, min_confidence=config.output.min_confidence)
        summary = process(source, stages, sinks, renderer, advance, stop.event)
        progress.update(task, completed=_done(summary.frames, source.skipped, total))
        ignore_stop_signals()  # closing the sinks finalizes the outputs; never cut that short
    signum = stop.signum or signal.SIGINT
    ended_by = describe(signum) if summary.interrupted else None
    _print_summary(summary, ended_by, source.still, source.skipped)
    return exit_code(signum) if summary.interrupted else 0


def _done(frames: int, skipped: int, total: int | None) -> int:
    """Inputs done for the progress bar: skipped files count, so the bar reaches the total."""
    return frames + skipped if total is None else min(total, frames + skipped)


def _print_summary(summary: Any, ended_by: str | None, still: bool, skipped: int) -> None:
    from rich.console import Console

    if still:  # photos have no frame rate, and none is dropped
        line = f"{summary.frames} images in {summary.wall_s:.1f} s; faces in {summary.face_frames}"
        line += f"; skipped {skipped} unreadable" if skipped else ""
    else:
        line = (
            f"{summary.frames} frames in {summary.wall_s:.1f} s ({summary.fps:.1f} FPS); "
            f"faces in {summary.face_frames}; dropped {summary.dropped}"
        )
    with suppress(OSError):  # after SIGHUP the terminal may be gone; the outputs are complete
        Console(stderr=True).print(line + (f"; {ended_by}" if ended_by else ""), soft_wrap=True)


def _headless_unless_window(config: LiveConfig, probe: Any) -> LiveConfig:
    """The config, made headless (with one warning) when the probe could not open a window."""
    if probe is None or probe.usable():
        return config
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    logger.warning("cannot open a window on %r; running headless", display)
    return replace(config, output=replace(config.output, headless=True))


def _start_window_probe(config: LiveConfig) -> Any:
    """A child process that tries to open a window, when this run would show one."""
    if not config.output.show_window:
        return None
    from fer_live.outputs.display import WindowProbe

    return WindowProbe()


def _check_device(device: Device) -> None:
    """``--device cuda`` on a machine without an NVIDIA GPU: say so, not "install a package"."""
    if not device.is_cuda or not sys.platform.startswith("linux"):
        return
    if not any(Path("/dev").glob("nvidia[0-9]*")) and not Path("/dev/dxg").exists():
        raise ConfigError(
            f"--device {device}: no NVIDIA GPU on this machine (no /dev/nvidia*); use --device cpu"
        )
