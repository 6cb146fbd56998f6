"""The one table of output formats: a flag, its help, and the sink it opens.

Adding an output format is one ``OutputFormat`` in ``OUTPUT_FORMATS`` plus its sink class
(``fer_live.outputs.base.Sink``). The flag of ``fer-live run`` and ``bench``
(``fer_live.commands.app``), the run's files (``OutputConfig.files``, by format name), the checks
that outputs fit the file system, differ from each other and from the inputs, and ``open_sinks``
all read it. The window is not a file format: ``--headless`` and the display decide it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fer_live.config import check_name_length
from fer_live.errors import ConfigError
from fer_live.outputs.base import NullSink, Sink, SinkSettings
from fer_live.outputs.events import EventsSink
from fer_live.outputs.records import CsvSink, JsonlSink, is_special_file
from fer_live.outputs.sinks import WindowSink, annotated_sink, output_kind
from fer_live.outputs.staged import check_outputs, remove_stale_parts


@dataclass(frozen=True)
class OutputFormat:
    """One output format.

    Attributes:
        name: Its key in ``OutputConfig.files`` (and the flag's parameter name).
        flags: The command-line flag, first its long name (``("--output", "-o")``).
        help: The flag's help text.
        open: Opens the sink for a path; may refuse it (``ConfigError``) before making anything.
        folder: The path may be a folder (it then holds one file per frame).
        check: Refuses a bad path before any work (``ConfigError`` naming the flag), or None.
    """

    name: str
    flags: tuple[str, ...]
    help: str
    open: Callable[[Path, SinkSettings], Sink]
    folder: bool = False
    check: Callable[[Path], object] | None = None

    @property
    def flag(self) -> str:
        """The flag's long name, as error messages name it."""
        return self.flags[0]

    def writes_folder(self, path: Path) -> bool:
        return self.folder and output_kind(path) == "folder"


def _jsonl(path: Path, run: SinkSettings) -> Sink:
    return JsonlSink(path, run.labels, run.min_confidence)


def _csv(path: Path, run: SinkSettings) -> Sink:
    return CsvSink(path, run.labels, run.min_confidence, run.face_mesh)


def _events(path: Path, run: SinkSettings) -> Sink:
    return EventsSink(path, run.labels)


# Order is the order of the flags in the help and of the sinks a frame is written to.
OUTPUT_FORMATS: dict[str, OutputFormat] = {
    "video": OutputFormat(
        "video",
        ("--output", "-o"),
        "Annotated video (.mp4, .mkv, .webm, ...), one annotated image (.jpg, .png) for a "
        "single image source, or a folder of images (a folder or a name without a suffix).",
        annotated_sink,
        folder=True,
        check=output_kind,
    ),
    "jsonl": OutputFormat("jsonl", ("--jsonl",), "Per-face records (JSON Lines).", _jsonl),
    "csv": OutputFormat("csv", ("--csv",), "Per-face records (CSV).", _csv),
    "events": OutputFormat(
        "events",
        ("--events",),
        "Expression events per face (JSON Lines): one line per event as soon as it ends, "
        "the open ones at the end of the source.",
        _events,
    ),
}


def _formats(files: Mapping[str, Path]) -> list[tuple[OutputFormat, Path]]:
    """The formats ``files`` asks for, in table order.

    Raises:
        ConfigError: A name that is not in the table.
    """
    unknown = sorted(set(files) - set(OUTPUT_FORMATS))
    if unknown:
        raise ConfigError(
            f"unknown output format {unknown[0]!r}; known: {', '.join(OUTPUT_FORMATS)}"
        )
    return [(fmt, Path(files[name])) for name, fmt in OUTPUT_FORMATS.items() if name in files]


def check_output_paths(files: Mapping[str, Path]) -> None:
    """Refuse, before any work, output paths no run could write: a name too long for the file
    system, a format's own refusal (``-o out.mp``), two outputs on one path, a folder where a
    format writes one file.

    Raises:
        ConfigError: Naming the flag (and the path).
    """
    chosen = _formats(files)
    for fmt, path in chosen:
        check_name_length(fmt.flag, path)
    for fmt, path in chosen:
        if fmt.check is not None:
            fmt.check(path)
    seen: dict[Path, str] = {}
    for fmt, path in chosen:  # the two flags that collide, not every flag there is
        other = seen.setdefault(path.resolve(), fmt.flag)
        if other != fmt.flag:
            raise ConfigError(f"{other} and {fmt.flag} must be different files, got '{path}'")
    for fmt, path in chosen:
        if path.is_dir() and not fmt.folder:
            raise ConfigError(f"{fmt.flag} must be a file, got the folder '{path}'")


def open_sinks(files: Mapping[str, Path], run: SinkSettings, window: bool) -> list[Sink]:
    """The sinks ``files`` asks for, and a window if ``window`` (a NullSink when none).

    Args:
        files: Output format name -> path (``OutputConfig.files``).
        run: What the sinks need to know about the run (labels, frame rate, the source).
        window: Show the frames in a window too (a still image holds until a key is pressed).

    Returns:
        Sinks in write order; enter each as a context manager.

    Raises:
        ConfigError: An output is an input, two outputs are one file, or a format refuses its
            path for this source (``-o x.jpg`` for a video); nothing was made then.
    """
    chosen = _formats(files)
    named = [(fmt.flag, path) for fmt, path in chosen]
    folders = [path for fmt, path in chosen if fmt.writes_folder(path)]
    check_outputs(named, run.inputs, folders)
    sinks: list[Sink] = []
    try:
        for fmt, path in chosen:
            sinks.append(fmt.open(path, run))
    except Exception:
        for sink in sinks:  # a later output failed to open: leave no half-made earlier ones
            sink.abort()
        raise
    # after opening: a refused run touches nothing, and this run's own staged files are kept
    remove_stale_parts(path.parent for _, path in named if not is_special_file(path))
    if window:
        sinks.append(WindowSink(hold=run.still, fps=None if run.live or run.still else run.fps))
    return sinks or [NullSink()]
