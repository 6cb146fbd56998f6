"""Output files: never one of the user's inputs, and either whole or absent under their name.

``check_outputs`` runs before any output is opened, so a refused run has touched nothing.
``StagedFile`` writes under a hidden temporary name beside the final path and renames it into
place when the sink closes: a reader (or a second run writing the same paths) never sees a
half-written file under the final name, and an input is never truncated by an open for writing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from fer_live.config import VIDEO_SUFFIXES, OutputConfig
from fer_live.errors import ConfigError


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file, which hard links and symlinks share."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def check_outputs(output: OutputConfig, inputs: Sequence[Path]) -> None:
    """Refuse outputs that are an input file, each other, or a folder holding input images.

    Args:
        output: The run's output paths.
        inputs: Local files the source reads (empty for cameras and streams).

    Raises:
        ConfigError: Naming the flag and both paths.
    """
    flags = [("--output", output.video), ("--jsonl", output.jsonl), ("--csv", output.csv)]
    named = [(flag, Path(path)) for flag, path in flags if path is not None]
    by_identity = {}
    for path in inputs:
        ident = _identity(path)
        if ident is not None:
            by_identity[ident] = path
    input_dirs = {p.resolve().parent for p in inputs}
    seen: dict[tuple[int, int], str] = {}
    for flag, path in named:
        ident = _identity(path)
        if ident is not None and ident in by_identity:
            raise ConfigError(
                f"{flag} '{path}' is the input '{by_identity[ident]}': refusing to overwrite it"
            )
        if ident is not None and ident in seen:
            raise ConfigError(f"{flag} '{path}' is the same file as {seen[ident]}")
        if ident is not None:
            seen[ident] = flag
        writes_folder = flag == "--output" and path.suffix.lower() not in VIDEO_SUFFIXES
        if writes_folder and path.resolve() in input_dirs:
            raise ConfigError(
                f"--output '{path}' is the folder of the input images: choose another folder"
            )


class StagedFile:
    """A file written under ``.<name>.<pid>.part<suffix>`` and renamed to ``path`` on commit.

    The temporary name keeps the suffix, so encoders that pick the container from it still do.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.temp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.part{self.path.suffix}")

    def commit(self) -> None:
        """Move the finished file into place (atomic within one filesystem)."""
        if self.temp.exists():
            os.replace(self.temp, self.path)

    def discard(self) -> None:
        """Remove the temporary file (nothing worth keeping was written)."""
        self.temp.unlink(missing_ok=True)
