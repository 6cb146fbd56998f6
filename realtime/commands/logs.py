"""Console logging for the ``fer-live`` commands (rich, on stderr).

Its own module so that every command module (``app``, ``compile``) can set logging up
without importing ``app``, which imports them.
"""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(verbose: bool) -> None:
    """Log INFO (``verbose``) or WARNING and up to stderr through rich."""
    from rich.console import Console
    from rich.logging import RichHandler

    handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=False)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[handler],
        force=True,
    )


def reopen_closed_std_streams() -> None:
    """Point a closed stdin, stdout or stderr (``2>&-``, ``>&-``) at the null device.

    Python leaves ``sys.stderr`` None then (a library's ``flush`` on it fails the run), and the
    first file opened would take the free descriptor, so log lines would land in an output.
    """
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: fd itself
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        if getattr(sys, name) is None:
            mode = "r" if fd == 0 else "w"
            setattr(sys, name, open(fd, mode, encoding="utf-8", closefd=False))  # noqa: SIM115
