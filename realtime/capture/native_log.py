"""Silence native libraries that write straight to the process's stderr.

MediaPipe/LiteRT print INFO and warning lines from C++ when a graph is created, first run and
destroyed; environment switches do not reach those loggers, so the file descriptor is muted
for just those calls. Python-level errors are still raised normally.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Point fd 2 at /dev/null for the duration (no-op when fd 2 cannot be duplicated)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
