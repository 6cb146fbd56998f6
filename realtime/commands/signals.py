"""How SIGINT (Ctrl-C), SIGTERM and SIGHUP end a run, in its two phases.

1. Starting and loading (imports ~0.3 s, flag parsing, source, model, detector): no output
   exists yet, so a signal prints one line and exits at once with 128 + the signal number
   (130, 143, 129). Raising KeyboardInterrupt here instead gave tracebacks from imports, a
   silent exit 130 from typer's flag parsing, and was even swallowed by a library import.
2. Running (outputs open): the first signal only asks the loop to stop after the current frame
   (``graceful_stop``), so the outputs close whole; a second one interrupts at once.

``timeout``, container stops and service managers send SIGTERM; closing a terminal sends SIGHUP.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def exit_code(signum: int) -> int:
    """The shell's exit code for a run ended by ``signum`` (130 for SIGINT)."""
    return 128 + int(signum)


def describe(signum: int) -> str:
    """``interrupted`` for Ctrl-C, else ``stopped by SIGTERM`` (the name of the signal)."""
    if signum == signal.SIGINT:
        return "interrupted"
    return f"stopped by {signal.Signals(signum).name}"


class Interrupted(KeyboardInterrupt):
    """A second stop signal while running: stop now, without finishing the frame.

    A KeyboardInterrupt, so every ``except KeyboardInterrupt`` that cleans up still does.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(describe(signum))
        self.signum = signum


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _exit_now(stderr_fd: int, signum: int, frame: FrameType | None) -> None:
    # os.write: no buffered stream may be half-flushed here; os._exit: no import to unwind.
    with suppress(OSError):  # stderr closed: the exit code still tells
        os.write(stderr_fd, f"error: {describe(signum)}\n".encode())
    os._exit(exit_code(signum))


def _stderr_copy() -> int:
    """A descriptor of stderr that stays put: fd 2 itself points at /dev/null while the detector
    loads (``fer_live.capture.native_log``), and the exit line went there."""
    try:
        return os.dup(2)
    except OSError:  # no stderr at all
        return 2


def exit_at_once_until_running() -> None:
    """Phase 1: a stop signal exits at once with one line and 128 + its number.

    Only for the ``fer-live`` script itself: a program (or pytest) that imports the CLI keeps
    its own Ctrl-C behaviour. A signal the parent ignores (``nohup`` and SIGHUP) stays ignored.
    """
    if not _on_main_thread() or not os.path.basename(sys.argv[0]).startswith("fer-live"):
        return
    exit_now = functools.partial(_exit_now, _stderr_copy())
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(signum, exit_now)


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


class StopRequest:
    """Set by the first stop signal; the loop ends after the current frame.

    Attributes:
        event: Set when a stop was asked for (``pipeline.process`` polls it between frames).
        signum: The signal that asked, or None.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """First signal: note it and stop after this frame; the next one interrupts at once."""
        self.signum = signum
        self.event.set()
        for other in STOP_SIGNALS:
            if signal.getsignal(other) == self.handle:
                signal.signal(other, _raise_interrupted)


@contextmanager
def graceful_stop() -> Iterator[StopRequest]:
    """Phase 3: the first stop signal sets ``StopRequest.event`` instead of interrupting."""
    stop = StopRequest()
    if not _on_main_thread():
        yield stop
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(signum, stop.handle)
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def ignore_stop_signals() -> None:
    """While outputs are being finalized: a signal must not cut the video's index short."""
    if _on_main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
