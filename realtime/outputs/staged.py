"""Output files: never one of the user's inputs, and either whole or absent under their name.

``check_outputs`` runs before any output is opened, so a refused run has touched nothing.
``StagedFile`` writes under a hidden temporary name beside the final path and renames it into
place when the sink closes: a reader (or a second run writing the same paths) never sees a
half-written file under the final name, and an input is never truncated by an open for writing.
A run that fails moves what it wrote to ``<stem>.partial<suffix>`` instead, and
``remove_stale_parts`` clears the staged files of runs that were killed (``kill -9``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from fer_live.config import NAME_MAX
from fer_live.errors import ConfigError, first_line

logger = logging.getLogger(__name__)

# ``.<stem>.<pid>.part<suffix>``: the names StagedFile writes (the stem may be shortened)
_STAGED_NAME = re.compile(r"\..*\.(\d+)\.part(?:\.[^.]*)?", re.DOTALL)
# longer suffixes are left off the staged name (only video and image suffixes matter there)
_MAX_SUFFIX_BYTES = 32


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file, which hard links and symlinks share."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def same_file(path: Path, other: Path) -> bool:
    """Whether two paths name one existing file (also through a symlink or a hard link)."""
    ident = _identity(path)
    return ident is not None and ident == _identity(other)


def check_outputs(
    named: Sequence[tuple[str, Path]], inputs: Sequence[Path], folders: Sequence[Path] = ()
) -> None:
    """Refuse outputs that are an input file, each other, or a folder holding input images.

    Args:
        named: The run's outputs as (flag, path).
        inputs: Local files the source reads (empty for cameras and streams).
        folders: The outputs among ``named`` that are folders of images.

    Raises:
        ConfigError: Naming the flag and both paths.
    """
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
        if path in folders and path.resolve() in input_dirs:
            raise ConfigError(
                f"{flag} '{path}' is the folder of the input images: choose another folder"
            )


def describe_os_error(exc: BaseException, staged: Path, path: Path) -> str:
    """Why a write failed, for an error line: the system's words, no errno, no staged name."""
    strerror = getattr(exc, "strerror", None)
    if isinstance(strerror, str) and strerror:
        return strerror
    return first_line(exc).replace(str(staged), str(path))


def fit_name(stem: str, tail: str) -> str:
    """``stem + tail``, with the stem cut and a digest of it added when that passes NAME_MAX.

    The digest keeps two long names that share their first bytes apart.
    """
    name = stem + tail
    if len(os.fsencode(name)) <= NAME_MAX:
        return name
    digest = "~" + hashlib.sha256(os.fsencode(stem)).hexdigest()[:12]
    room = NAME_MAX - len(os.fsencode(digest + tail))
    # cut on bytes; a character split in two is dropped whole
    short = os.fsencode(stem)[:room].decode("utf-8", errors="ignore")
    return short + digest + tail


def _short_suffix(path: Path) -> str:
    return path.suffix if len(os.fsencode(path.suffix)) <= _MAX_SUFFIX_BYTES else ""


class StagedFile:
    """A file written under ``.<name>.<pid>.part<suffix>`` and renamed to ``path`` on commit.

    The temporary name keeps the suffix, so encoders that pick the container from it still do;
    it is shortened to fit NAME_MAX, so any name the file system takes can be staged.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        suffix = _short_suffix(self.path)
        stem = self.path.stem if suffix else self.path.name
        self.temp = self.path.with_name(fit_name(f".{stem}", f".{os.getpid()}.part{suffix}"))
        self.partial = self.path.with_name(fit_name(stem, f".partial{suffix}"))

    def commit(self) -> None:
        """Move the finished file into place (atomic within one filesystem)."""
        if self.temp.exists():
            os.replace(self.temp, self.path)

    def discard(self) -> None:
        """Remove the temporary file (nothing worth keeping was written)."""
        self.temp.unlink(missing_ok=True)

    def keep_partial(self) -> Path | None:
        """After a failed run: move the file to ``<stem>.partial<suffix>``, never to ``path``.

        Returns:
            The partial file, or None when nothing was written.
        """
        if not self.temp.exists():
            return None
        os.replace(self.temp, self.partial)
        return self.partial


def remove_stale_parts(folders: Iterable[Path]) -> None:
    """Remove staged files whose run is gone (killed before it could rename or remove them).

    Logs one warning naming the count and the dead runs' process ids.
    """
    removed: dict[int, int] = {}
    for folder in {Path(f).resolve() for f in folders}:
        try:
            entries = list(os.scandir(folder))
        except OSError:  # not created yet, or unreadable: nothing of ours there
            continue
        for entry in entries:
            match = _STAGED_NAME.fullmatch(entry.name)
            if match is None or not entry.is_file(follow_symlinks=False):
                continue
            pid = int(match.group(1))
            try:
                if _owner_gone(pid, entry.stat(follow_symlinks=False).st_mtime):
                    os.unlink(entry.path)
                    removed[pid] = removed.get(pid, 0) + 1
            except OSError:  # another run removed it first, or the folder is read-only
                continue
    if removed:
        logger.warning(_removed_line(removed))


def _removed_line(removed: dict[int, int]) -> str:
    """``removed 3 stale partial files left by an earlier run (pid 1234)``."""
    count, pids = sum(removed.values()), sorted(removed)
    files = "file" if count == 1 else "files"
    if len(pids) == 1:
        return f"removed {count} stale partial {files} left by an earlier run (pid {pids[0]})"
    listed = ", ".join(str(pid) for pid in pids)
    return f"removed {count} stale partial {files} left by earlier runs (pids {listed})"


def _owner_gone(pid: int, mtime: float) -> bool:
    """Whether the run that staged a file last written at ``mtime`` has ended."""
    if pid == os.getpid():
        return False
    if not _pid_exists(pid):
        return True
    proc = _proc_stat(pid)
    if proc is None:  # no /proc (macOS): a live pid may well be the run that writes the file
        return False
    state, started = proc
    # a zombie has ended; a process that started after the file's last write reused the pid
    return state == "Z" or started > mtime


def _pid_exists(pid: int) -> bool:
    if pid <= 0:  # 0 would signal our own process group
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:  # another user's process
        return True
    except (OSError, OverflowError):  # no such process, or a number no pid can be
        return False
    return True


def _proc_stat(pid: int) -> tuple[str, float] | None:
    """Linux: the process's state letter and start time (seconds since the epoch)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = Path("/proc/stat").read_text().split("btime", 1)[1].split()[0]
        # fields[0] is field 3 of proc(5) (state), fields[19] field 22 (starttime, clock ticks)
        return fields[0], int(boot) + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None
