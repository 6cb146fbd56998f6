"""``fer-live bench --vs-smooth NAME``: the run's smoother against another one, side by side.

Full pipeline passes over the same source, alternating the two smoothers in ABBA order so that
a slow drift of the machine's load hits both alike. Reports each smoother's end-to-end FPS
(median over its passes), the process's CPU time per frame (median; it moves less with the
load of a shared machine), its smooth-stage latency over all its frames, and both ratios.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from fer_live.commands.bench import percentiles, pipeline_pass
from fer_live.config import LiveConfig, SmoothConfig
from fer_live.errors import ConfigError


def pass_order(first: str, second: str, rounds: int) -> list[str]:
    """``rounds`` ABBA pairs: A B B A A B ... (each smoother runs ``rounds`` times)."""
    return [(first, second)[(i + i // 2) % 2] for i in range(2 * rounds)]


def compare_smoothing(config: LiveConfig, other: str, rounds: int = 4) -> dict[str, Any]:
    """Run the pipeline with ``config``'s smoother and with ``other``, alternating.

    Args:
        config: The run configuration; its ``smooth.name`` is the first smoother.
        other: The smoother to compare against (``--vs-smooth``).
        rounds: Passes per smoother.

    Returns:
        JSON-ready: per smoother the FPS of each pass and their median, the smooth stage's
        p50/p95/p99 over all frames, and the smoother ``auto`` resolved to; the pass order and
        ``fps_ratio`` = first / other (medians).

    Raises:
        ConfigError: ``other`` is not a smoother name, or the same as the run's.
    """
    first = config.smooth.name
    if other == first:
        raise ConfigError(f"--vs-smooth {other} is the run's own smoother; pick another one")
    configs = {first: config, other: replace(config, smooth=SmoothConfig(other))}
    order = pass_order(first, other, rounds)
    fps: dict[str, list[float]] = {first: [], other: []}
    cpu_ms: dict[str, list[float]] = {first: [], other: []}
    smooth_ms: dict[str, list[float]] = {first: [], other: []}
    for name in order:
        run = pipeline_pass(configs[name])
        fps[name].append(run["summary"].fps)
        cpu_ms[name].append(1000.0 * run["cpu_s"] / max(run["summary"].frames, 1))
        smooth_ms[name].extend(run["timings"]["smooth"])
    medians = {name: float(np.median(values)) for name, values in fps.items()}
    cpu = {name: float(np.median(values)) for name, values in cpu_ms.items()}
    result = {
        name: {
            "fps": fps[name],
            "fps_median": medians[name],
            "cpu_ms_per_frame": cpu_ms[name],
            "cpu_ms_per_frame_median": cpu[name],
            "smooth_ms": percentiles(smooth_ms[name]),
            "smoother": resolved_smoother(configs[name]),
        }
        for name in (first, other)
    }
    return {
        "smoothers": result,
        "order": order,
        "fps_ratio": medians[first] / max(medians[other], 1e-9),
        # CPU time per frame moves less with the machine's load than wall-clock FPS
        "cpu_ratio": cpu[first] / max(cpu[other], 1e-9),
    }


def resolved_smoother(config: LiveConfig) -> str:
    """The smoother class a run with ``config`` uses (``auto`` resolved for its model)."""
    from fer_live.infer.assets import resolve_model_path
    from fer_live.smooth.table import make_smoother

    model = resolve_model_path(config.backend.model, config.backend.backend)
    return type(make_smoother(config.smooth.name, model=model)).__name__


def compare_table(compare: dict[str, Any]) -> Any:
    """A rich Table of ``compare_smoothing``'s result (the CLI prints it)."""
    from rich.table import Table

    table = Table(title="smoothers side by side (" + " ".join(compare["order"]) + ")")
    for column in ("--smooth", "runs as", "FPS (median)", "FPS per pass", "CPU ms/frame",
                   "smooth p50 ms", "smooth p95 ms"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("--smooth", "runs as") else "right")
    for name, row in compare["smoothers"].items():
        table.add_row(
            name, row["smoother"], f"{row['fps_median']:.1f}",
            " ".join(f"{v:.1f}" for v in row["fps"]), f"{row['cpu_ms_per_frame_median']:.2f}",
            f"{row['smooth_ms']['p50']:.3f}", f"{row['smooth_ms']['p95']:.3f}",
        )  # fmt: skip
    return table


def ratio_line(compare: dict[str, Any]) -> str:
    """Both ratios on one line, printed under the table."""
    first, other = compare["smoothers"]
    return (
        f"end-to-end FPS {first} / {other}: x{compare['fps_ratio']:.3f}; "
        f"CPU per frame {first} / {other}: x{compare['cpu_ratio']:.3f}"
    )
