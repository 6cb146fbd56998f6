"""``fer-live report``: per-track summaries and timeline PNGs from a records file.

The command-line face of ``fer_live.report.summary`` and ``fer_live.report.plot`` (registered in
``app``); it is the only part that prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report_command(
    records: Annotated[
        Path,
        typer.Argument(help="Per-face records written by fer-live --jsonl.", show_default=False),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Output folder (default: <RECORDS stem>_report beside RECORDS)."
        ),
    ] = None,
    no_plots: Annotated[
        bool, typer.Option("--no-plots", help="Only the summary (no PNGs, no matplotlib).")
    ] = False,
) -> int:
    """Summarize each face track (duration, share per expression, changes) and plot timelines.

    Writes summary.csv, summary.json, track_<id>.png per track and tracks.png (all tracks on
    one time axis) into the output folder, and prints the summary table.
    """
    from rich.console import Console
    from rich.markup import escape

    from fer_live.report.plot import require_matplotlib, write_timelines
    from fer_live.report.read import read_records
    from fer_live.report.summary import (
        shares_table,
        source_name,
        summarize_all,
        summary_table,
        write_summaries,
    )

    if not no_plots:
        require_matplotlib()
    data = read_records(records)
    out_dir = _output_dir(records, out)
    summaries = summarize_all(data)
    written = write_summaries(data, summaries, out_dir)
    if not no_plots:
        written += write_timelines(data, summaries, out_dir)
    console = Console()
    count = f"{len(summaries)} track{'s' if len(summaries) != 1 else ''}"
    title = f"{source_name([s.source for s in summaries])}: {count}"
    console.print(summary_table(summaries, title))
    console.print(shares_table(summaries, data.labels))
    console.print(f"wrote {len(written)} files to {escape(str(out_dir))}", soft_wrap=True)
    return 0


def _output_dir(records: Path, out: Path | None) -> Path:
    """Create the output folder (default ``<stem>_report`` beside the records).

    Raises:
        ConfigError: It cannot be created (names --out, the folder and the reason).
    """
    from fer_live.errors import ConfigError

    folder = records.with_name(f"{records.stem}_report") if out is None else out
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out '{folder}' is not a usable folder: {exc.strerror}") from None
    if not folder.is_dir():
        raise ConfigError(f"--out '{folder}' is not a folder")
    return folder
