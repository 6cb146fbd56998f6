"""``fer-live report``: per-track summaries and timeline PNGs from a records file.

The command-line face of ``fer_live.report.summary`` and ``fer_live.report.plot`` (registered in
``app``); it is the only part that prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fer_live.report.read import Records


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
    """Summarize each face track (duration, share per expression, changes, expression events)
    and plot timelines.

    Writes summary.csv, summary.json, events.csv (one row per expression event),
    event_counts.csv (events and total time per expression per track), track_<id>.png per
    track and tracks.png (all tracks on one time axis, events as spans) into the output folder,
    and prints the summary tables.
    """
    from rich.console import Console
    from rich.markup import escape

    from fer_live.report.events import (
        EVENT_COUNTS_CSV,
        EVENTS_CSV,
        counts_csv_text,
        counts_table,
        events_csv_text,
        find_events,
    )
    from fer_live.report.plot import require_matplotlib, write_timelines
    from fer_live.report.read import read_records
    from fer_live.report.summary import (
        shares_table,
        source_name,
        summarize_all,
        summary_table,
        write_summaries,
        write_text,
    )

    if not no_plots:
        require_matplotlib()
    data = read_records(records)
    out_dir = records.with_name(f"{records.stem}_report") if out is None else out
    _check_not_input(records, out_dir, _output_names(data, plots=not no_plots))
    _make_dir(out_dir)
    summaries = summarize_all(data)
    written = write_summaries(data, summaries, out_dir)
    events = find_events(data)
    written.append(write_text(out_dir / EVENTS_CSV, events_csv_text(events)))
    written.append(write_text(out_dir / EVENT_COUNTS_CSV, counts_csv_text(events, data.labels)))
    if not no_plots:
        written += write_timelines(data, summaries, out_dir, events)
    console = Console()
    count = f"{len(summaries)} track{'s' if len(summaries) != 1 else ''}"
    title = f"{source_name([s.source for s in summaries])}: {count}"
    console.print(summary_table(summaries, title))
    console.print(shares_table(summaries, data.labels))
    console.print(counts_table(events, data.labels))
    console.print(f"wrote {len(written)} files to {escape(str(out_dir))}", soft_wrap=True)
    return 0


def _output_names(data: Records, plots: bool) -> list[str]:
    """The files a report on ``data`` writes into its folder."""
    from fer_live.report.events import EVENT_COUNTS_CSV, EVENTS_CSV
    from fer_live.report.plot import COMBINED_PNG, track_png_name
    from fer_live.report.summary import SUMMARY_CSV, SUMMARY_JSON

    names = [SUMMARY_CSV, SUMMARY_JSON, EVENTS_CSV, EVENT_COUNTS_CSV]
    if plots:
        names += [track_png_name(track.track_id) for track in data.tracks]
        names += [COMBINED_PNG] if len(data.tracks) > 1 else []
    return names


def _check_not_input(records: Path, folder: Path, names: list[str]) -> None:
    """Refuse a report that would write over its own records (same path, symlink, hard link).

    Raises:
        ConfigError: Naming the output and the input.
    """
    from fer_live.errors import ConfigError
    from fer_live.outputs.staged import same_file

    for name in names:
        if same_file(folder / name, records):
            raise ConfigError(
                f"report output '{folder / name}' is the input '{records}': refusing to "
                "overwrite it; choose another --out"
            )


def _make_dir(folder: Path) -> None:
    """Create the output folder.

    Raises:
        ConfigError: It cannot be created (names --out, the folder and the reason).
    """
    from fer_live.errors import ConfigError

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out '{folder}' is not a usable folder: {exc.strerror}") from None
    if not folder.is_dir():
        raise ConfigError(f"--out '{folder}' is not a folder")
