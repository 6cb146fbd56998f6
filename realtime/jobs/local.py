"""Worker processes on this machine, each with its model loaded once, fed one input at a time.

Each worker is a spawned process with a pipe to the driver: it loads a ``Worker`` (model and
detector), says ``ready``, then processes the inputs it is sent, one at a time, sending progress
and a result for each. The driver hands a worker its next input only when it is free, so it
always knows which input a worker holds: a worker that dies (``kill -9``, out of memory) costs
that input one retry on a fresh worker, then it is marked failed, and the job goes on.

Workers ignore Ctrl-C (the terminal sends it to them too); the driver asks them to stop through
a shared flag, and a worker whose driver is gone exits within half a second.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from typing import Any

from fer_live.errors import FerLiveError, first_line
from fer_live.jobs.driver import Events
from fer_live.jobs.inputs import JobInput
from fer_live.jobs.state import FAILED, PENDING, InputResult
from fer_live.jobs.work import Worker, WorkSettings

logger = logging.getLogger(__name__)

# A worker sends progress at most this often (one message per frame would flood the pipe).
_PROGRESS_EVERY_S = 0.25
_POLL_S = 0.2
# An input whose worker died is tried once more on a fresh worker, then marked failed.
_ATTEMPTS = 2


def _watch_parent(parent: int) -> None:
    """Exit when the driver is gone (``kill -9``): its staging folder is then stale anyway."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="fer-live-parent", daemon=True).start()


def _stop_relay(shared: Any) -> threading.Event:
    """A thread event set when the driver sets the shared flag.

    The flag is a lock-free shared byte, polled: a ``multiprocessing.Event`` deadlocks its
    ``set()`` once a process that waited on it was killed (its waiter count never drops).
    """
    local = threading.Event()

    def relay() -> None:
        while not shared.value and not local.is_set():
            time.sleep(_POLL_S)
        local.set()

    threading.Thread(target=relay, name="fer-live-stop", daemon=True).start()
    return local


def worker_main(conn: Connection, settings: WorkSettings, stop: Any, parent: int) -> None:
    """A worker process: load once, then process inputs from ``conn`` until told to end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _watch_parent(parent)
    _quiet_worker()
    local_stop = _stop_relay(stop)
    # SIGTERM (a service manager stopping the group): drop the input in flight, then exit
    signal.signal(signal.SIGTERM, lambda signum, frame: local_stop.set())
    try:
        worker = Worker(settings)
    except Exception as exc:  # the model cannot load: the whole job stops, with this line
        conn.send(("broken", " ".join(first_line(exc).split())))
        return
    conn.send(("ready", os.getpid()))
    try:
        while not local_stop.is_set():
            try:
                item = conn.recv()
            except EOFError:
                break
            if item is None:
                break
            sender = _ProgressSender(conn)
            conn.send(("result", worker.process(item, sender.send, local_stop)))
    except (BrokenPipeError, EOFError):  # the driver is gone
        pass
    finally:
        worker.close()


class _ProgressSender:
    """Sends an input's progress to the driver, at most every ``_PROGRESS_EVERY_S``."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._last = 0.0

    def send(self, frames: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self._last >= _PROGRESS_EVERY_S:
            self._last = now
            self._conn.send(("progress", frames, total))


def _quiet_worker() -> None:
    """One BLAS thread and no native log lines, as in the ``fer-live`` process itself."""
    import cv2
    from threadpoolctl import threadpool_limits

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    threadpool_limits(limits=1, user_api="blas")


@dataclass
class _Slot:
    index: int
    process: Any = None
    conn: Connection | None = None
    item: JobInput | None = None
    ready: bool = False


class LocalRunner:
    """Runs a job's inputs on ``workers`` processes of this machine.

    Args:
        settings: What every worker needs.
        workers: Worker processes (each loads the model once).
    """

    def __init__(self, settings: WorkSettings, workers: int) -> None:
        self.settings = settings
        self.workers = workers
        self._context = get_context("spawn")  # no forked copy of the driver's threads

    def run(self, todo: Sequence[JobInput], events: Events, stop: threading.Event) -> None:
        """Process ``todo``; returns when all are finished or, after ``stop``, in-flight ones are.

        Raises:
            FerLiveError: A worker could not load the model (the job cannot run at all).
        """
        queue = deque(todo)
        attempts: dict[str, int] = {}
        shared_stop = self._context.RawValue("b", 0)
        slots = [_Slot(i) for i in range(min(self.workers, len(todo)))]
        try:
            for slot in slots:
                self._start(slot, shared_stop)
            while any(s.item is not None for s in slots) or (queue and not stop.is_set()):
                if stop.is_set():
                    shared_stop.value = 1
                for slot in slots:
                    if slot.ready and slot.item is None and queue and not stop.is_set():
                        self._assign(slot, queue.popleft(), events)
                self._poll(slots, events)
                for slot in slots:
                    if slot.process is not None and not slot.process.is_alive():
                        self._lost(slot, queue, attempts, events, shared_stop, stop)
        finally:
            shared_stop.value = 1
            self._shut_down(slots)

    def _start(self, slot: _Slot, shared_stop: Any) -> None:
        ours, theirs = self._context.Pipe()
        slot.process = self._context.Process(
            target=worker_main,
            args=(theirs, self.settings, shared_stop, os.getpid()),
            name=f"fer-live-worker-{slot.index}",
            daemon=True,
        )
        slot.process.start()
        theirs.close()
        slot.conn, slot.ready, slot.item = ours, False, None

    def _assign(self, slot: _Slot, item: JobInput, events: Events) -> None:
        assert slot.conn is not None
        slot.item = item
        slot.conn.send(item)
        events.started(slot.index, item)

    def _poll(self, slots: list[_Slot], events: Events) -> None:
        conns = [s.conn for s in slots if s.conn is not None]
        sentinels = [s.process.sentinel for s in slots if s.process is not None]
        ready = wait([*conns, *sentinels], timeout=_POLL_S)
        for slot in slots:
            while slot.conn is not None and slot.conn in ready and slot.conn.poll():
                try:
                    message = slot.conn.recv()
                except (EOFError, OSError):
                    break
                self._handle(slot, message, events)

    def _handle(self, slot: _Slot, message: tuple[Any, ...], events: Events) -> None:
        kind = message[0]
        if kind == "ready":
            slot.ready = True
        elif kind == "broken":
            raise FerLiveError(message[1])
        elif kind == "progress":
            events.advanced(slot.index, message[1], message[2])
        elif kind == "result" and slot.item is not None:
            item, slot.item = slot.item, None
            events.finished(slot.index, item, message[1])

    def _lost(
        self,
        slot: _Slot,
        queue: deque[JobInput],
        attempts: dict[str, int],
        events: Events,
        shared_stop: Any,
        stop: threading.Event,
    ) -> None:
        """A worker process ended: retry its input once, or mark it failed; start a new one."""
        code = slot.process.exitcode
        if not slot.ready and slot.item is None and not stop.is_set():
            raise FerLiveError(f"a worker process died while loading the model ({_how(code)})")
        item, slot.item = slot.item, None
        if item is not None:
            attempts[item.key] = attempts.get(item.key, 0) + 1
            if attempts[item.key] < _ATTEMPTS and not stop.is_set():
                logger.warning(
                    "the worker on %s died (%s); trying it again", item.source, _how(code)
                )
                queue.appendleft(item)
            elif stop.is_set():  # stopped with the job: left for the next run
                events.finished(slot.index, item, InputResult(item.name, item.source, PENDING))
            else:
                error = f"the worker processing it died ({_how(code)})"
                failed = InputResult(item.name, item.source, FAILED, error=error)
                events.finished(slot.index, item, failed)
        if slot.conn is not None:
            slot.conn.close()
        slot.process, slot.conn, slot.ready = None, None, False
        if queue and not stop.is_set():
            self._start(slot, shared_stop)

    def _shut_down(self, slots: list[_Slot]) -> None:
        for slot in slots:
            if slot.conn is not None:
                with contextlib.suppress(OSError):  # already gone
                    slot.conn.send(None)
        deadline = time.monotonic() + 10.0
        for slot in slots:
            if slot.process is not None:
                slot.process.join(max(0.1, deadline - time.monotonic()))
                if slot.process.is_alive():
                    slot.process.kill()
                    slot.process.join(1.0)
            if slot.conn is not None:
                slot.conn.close()


def _how(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"
