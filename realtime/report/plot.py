"""Timeline PNGs of a records file: class probabilities over time above a label band, with the
expression events (``fer_live.report.events``) as shaded spans and their apex marked.

One PNG per track (``track_<id>.png``) and, for several tracks, one combined PNG
(``tracks.png``: a row per track on a shared time axis). Figures are built on matplotlib's Agg
canvas directly, without pyplot, so no global backend or figure registry is touched. matplotlib
is optional (the ``report`` extra); without it the plots fail politely with the install hint.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fer_live.errors import FerLiveError
from fer_live.events.detect import Event
from fer_live.report.events import EventsOfTrack
from fer_live.report.read import Records, TrackSeries
from fer_live.report.summary import TrackSummary, source_name

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COMBINED_PNG = "tracks.png"
MAX_COMBINED_ROWS = 16  # beyond this the rows get too thin to read; the longest tracks win
_GAP_STEPS = 3.0  # a jump of more than 3 sampling steps is a gap (the face was lost)
_ROW_HEIGHT_IN = 1.9
_WIDTH_IN = 12.0


def require_matplotlib() -> None:
    """Fail before any work when the plots cannot be drawn.

    Raises:
        FerLiveError: matplotlib is not installed (with the pip hint).
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise FerLiveError(
            'timeline plots need matplotlib: pip install "fer-live[report]" (or pass --no-plots)'
        ) from None


def track_png_name(track_id: int) -> str:
    """The file name of one track's timeline."""
    return f"track_{track_id}.png"


def write_timelines(
    records: Records,
    summaries: Sequence[TrackSummary],
    out_dir: Path,
    events: Sequence[EventsOfTrack] = (),
) -> list[Path]:
    """Write one timeline PNG per track, plus the combined PNG when there are several tracks.

    Args:
        records: The records, grouped by track (same order as ``summaries``).
        summaries: The tracks' summaries (for the titles).
        out_dir: An existing folder.
        events: Each track's expression events, drawn as spans (tracks not listed: none).

    Returns:
        The PNG paths written, per track first, then the combined one.

    Raises:
        FerLiveError: matplotlib is missing, or a PNG cannot be written.
    """
    require_matplotlib()
    colours = class_colours(len(records.labels))
    spans = {track.track_id: track.events for track in events}
    paths = []
    for track, summary in zip(records.tracks, summaries, strict=True):
        figure = _track_figure(track, summary, records, colours, spans.get(track.track_id, ()))
        paths.append(_save(figure, out_dir / track_png_name(track.track_id)))
    if len(records.tracks) > 1:
        figure = _combined_figure(records, summaries, colours, spans)
        paths.append(_save(figure, out_dir / COMBINED_PNG))
    return paths


def plain(text: str) -> str:
    """Text from the records file shown literally: ``$`` would start mathtext (which raises on
    bad TeX at save time) and a leading ``_`` hides a legend entry."""
    text = text.replace("$", r"\$")
    return " " + text if text.startswith("_") else text


def class_colours(n: int) -> list[Any]:
    """A fixed, distinct colour per class (tab10, or tab20 beyond ten classes)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _new_figure(height_in: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(_WIDTH_IN, height_in), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)  # attaches itself: savefig renders through Agg
    return figure


def _track_figure(
    track: TrackSeries,
    summary: TrackSummary,
    records: Records,
    colours: list[Any],
    events: Sequence[Event],
) -> Figure:
    figure = _new_figure(4.2)
    grid = figure.add_gridspec(2, 1, height_ratios=[5, 1])
    probs_ax = figure.add_subplot(grid[0])
    band_ax = figure.add_subplot(grid[1], sharex=probs_ax)
    x = _x_values(track, records.timed)
    _draw_events(probs_ax, events, records.labels, colours, records.timed)
    _draw_probs(probs_ax, x, track.probs, records.labels, colours)
    _draw_band(band_ax, x, track.label, colours, records.timed)
    band_ax.set_xlabel(_x_label(records.timed))
    probs_ax.tick_params(labelbottom=False)
    length = (
        f"{summary.duration:.1f} s"
        if summary.duration_unit == "s"
        else (f"{summary.duration:.0f} frames")
    )
    probs_ax.set_title(
        f"track {track.track_id} - {plain(source_name([track.source]))} "
        f"(dominant: {plain(summary.dominant)}, {length}, "
        f"{summary.changes} label change{'' if summary.changes == 1 else 's'}, "
        f"{len(events)} event{'' if len(events) == 1 else 's'})"
    )
    figure.legend(
        *probs_ax.get_legend_handles_labels(), loc="outside right upper", title="expression"
    )
    return figure


def _combined_figure(
    records: Records,
    summaries: Sequence[TrackSummary],
    colours: list[Any],
    spans: dict[int, tuple[Event, ...]],
) -> Figure:
    rows = _combined_rows(records.tracks)
    figure = _new_figure(1.0 + _ROW_HEIGHT_IN * len(rows))
    grid = figure.add_gridspec(2 * len(rows), 1, height_ratios=[5, 1] * len(rows))
    first: Axes | None = None
    for row, track in enumerate(rows):
        probs_ax = figure.add_subplot(grid[2 * row], sharex=first)
        first = first or probs_ax
        band_ax = figure.add_subplot(grid[2 * row + 1], sharex=first)
        x = _x_values(track, records.timed)
        events = spans.get(track.track_id, ())
        _draw_events(probs_ax, events, records.labels, colours, records.timed)
        _draw_probs(probs_ax, x, track.probs, records.labels, colours)
        _draw_band(band_ax, x, track.label, colours, records.timed)
        probs_ax.set_ylabel(f"track {track.track_id}")
        probs_ax.tick_params(labelbottom=False)
        band_ax.tick_params(labelbottom=row == len(rows) - 1)
    band_ax.set_xlabel(_x_label(records.timed))
    sources = plain(source_name([s.source for s in summaries]))
    shown = (
        f"{len(rows)} tracks"
        if len(rows) == len(records.tracks)
        else (f"the {len(rows)} longest of {len(records.tracks)} tracks")
    )
    figure.suptitle(
        f"{sources}: {shown} (class probabilities, events shaded, label band below each)"
    )
    figure.legend(
        *probs_ax.get_legend_handles_labels(), loc="outside right upper", title="expression"
    )
    return figure


def _combined_rows(tracks: Sequence[TrackSeries]) -> list[TrackSeries]:
    """The tracks to show, in id order: all of them, or the longest when there are too many."""
    if len(tracks) <= MAX_COMBINED_ROWS:
        return list(tracks)
    longest = sorted(tracks, key=lambda t: -len(t.frame))[:MAX_COMBINED_ROWS]
    return sorted(longest, key=lambda t: t.track_id)


def _x_values(track: TrackSeries, timed: bool) -> np.ndarray:
    return track.t_s if timed else track.frame.astype(np.float64)


def _x_label(timed: bool) -> str:
    return "time (s)" if timed else "frame"


def _draw_probs(
    ax: Axes, x: np.ndarray, probs: np.ndarray, labels: Sequence[str], colours: list[Any]
) -> None:
    """One line per class; lines break where the track has a gap."""
    cuts = _gap_cuts(x)
    xs = np.insert(x, cuts, np.nan)
    ys = np.insert(probs.astype(np.float64), cuts, np.nan, axis=0)
    for column, (name, colour) in enumerate(zip(labels, colours, strict=True)):
        ax.plot(xs, ys[:, column], color=colour, linewidth=1.3, label=plain(name))
    ax.set_ylim(0.0, 1.02)
    ax.set_ylabel("probability")
    ax.grid(alpha=0.3)


def _draw_events(
    ax: Axes, events: Sequence[Event], labels: Sequence[str], colours: list[Any], timed: bool
) -> None:
    """Each event as a span in its expression's colour, from onset to offset, its apex a dot."""
    for event in events:
        colour = colours[labels.index(event.label)]
        start, end = (event.onset_t_s, event.offset_t_s) if timed else (
            float(event.onset_frame), float(event.offset_frame))  # fmt: skip
        apex = event.apex_t_s if timed else float(event.apex_frame)
        ax.axvspan(start, end, color=colour, alpha=0.18, linewidth=0)
        ax.plot([apex], [event.apex_prob], marker="v", color=colour, markersize=7,
                markeredgecolor="black", linestyle="none")  # fmt: skip


def _draw_band(ax: Axes, x: np.ndarray, label: np.ndarray, colours: list[Any], timed: bool) -> None:
    """The label of each record as a coloured strip: one bar per run of equal labels, hatched
    where the records are ``uncertain``."""
    half = _step(x, timed) / 2
    left = x - np.minimum(half, np.diff(x, prepend=-np.inf) / 2)
    right = x + np.minimum(half, np.diff(x, append=np.inf) / 2)
    starts = np.union1d(np.flatnonzero(np.diff(label)) + 1, _gap_cuts(x))
    bounds = np.concatenate([[0], starts, [len(x)]]).astype(int)
    for begin, end in zip(bounds[:-1], bounds[1:], strict=True):
        width = max(right[end - 1] - left[begin], 1e-9)
        bar = [(left[begin], width)]
        if label[begin] >= 0:
            ax.broken_barh(bar, (0, 1), facecolors=colours[label[begin]])
        else:  # hatched: tab10 has a grey class colour (the eighth, contempt)
            ax.broken_barh(bar, (0, 1), facecolors="white", edgecolors="0.55", hatch="///")
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_ylabel("label", rotation=0, ha="right", va="center")


def _step(x: np.ndarray, timed: bool) -> float:
    """The typical sampling step: the median positive gap, else one frame."""
    gaps = np.diff(x)
    gaps = gaps[gaps > 0]
    if len(gaps):
        return float(np.median(gaps))
    return 1 / 30 if timed else 1.0


def _gap_cuts(x: np.ndarray) -> np.ndarray:
    """Indices where a new segment starts because the previous sample is far behind."""
    if len(x) < 2:
        return np.zeros(0, np.int64)
    gaps = np.diff(x)
    step = _step(x, True)
    return np.flatnonzero(gaps > _GAP_STEPS * step) + 1


def _save(figure: Figure, path: Path) -> Path:
    try:
        figure.savefig(path)
    except OSError as exc:
        raise FerLiveError(f"cannot write '{path}': {exc.strerror or exc}") from None
    return path
