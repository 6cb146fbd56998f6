"""The same per-input work on Ray: long-lived actors that load the model once.

``RayRunner`` joins a cluster (``ray.init(address=...)``) or starts Ray on this machine, makes
one actor per worker (each reserving ``--cpus-per-worker`` CPUs, and a GPU with ``--device
cuda``), and hands each actor one input at a time, as ``local.LocalRunner`` does with processes.
Actors write into the job folder themselves, so it must be on a filesystem every node mounts at
the same path. An actor that dies (its node lost, ``kill -9``) costs its input one retry on a
new actor, then the input is marked failed. Ray is an optional extra: ``fer-live[ray]``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fer_live.errors import BackendUnavailable, FerLiveError, first_line
from fer_live.jobs.driver import Events
from fer_live.jobs.inputs import JobInput
from fer_live.jobs.state import FAILED, PENDING, InputResult
from fer_live.jobs.work import Progress, Worker, WorkSettings

logger = logging.getLogger(__name__)

_POLL_S = 0.25
_ATTEMPTS = 2
# Ray started here (no address): a small object store, as the actors pass only small results.
_LOCAL_OBJECT_STORE = 256 * 1024 * 1024


def import_ray() -> Any:
    """The ``ray`` module, or one clear error saying how to install it.

    Raises:
        BackendUnavailable: Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise BackendUnavailable(
            '--ray needs Ray, which is not installed: pip install "fer-live[ray]"'
        ) from None
    return ray


class JobActor:
    """A Ray actor's state: a loaded ``Worker`` and the progress of its current input.

    Ray runs ``process`` on one thread and ``progress``/``halt`` on another
    (``max_concurrency=2``), so the driver can watch and stop a long input.
    """

    def __init__(self, settings: WorkSettings) -> None:
        import cv2
        from threadpoolctl import threadpool_limits

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        threadpool_limits(limits=1, user_api="blas")
        self._worker = Worker(settings)
        self._stop = threading.Event()
        self._frames: tuple[int, int | None] = (0, None)

    def ready(self) -> int:
        return os.getpid()

    def process(self, item: JobInput) -> InputResult:
        self._frames = (0, None)
        progress: Progress = self._note
        return self._worker.process(item, progress, self._stop)

    def _note(self, frames: int, total: int | None) -> None:
        self._frames = (frames, total)

    def progress(self) -> tuple[int, int | None]:
        return self._frames

    def halt(self) -> None:
        self._stop.set()


@dataclass
class _Slot:
    index: int
    actor: Any = None
    item: JobInput | None = None
    ref: Any = None


class RayRunner:
    """Runs a job's inputs on Ray actors.

    Args:
        settings: What every worker needs.
        address: A cluster's address (``auto``, ``host:6379``, ``ray://host:10001``), or None to
            start Ray here (or join the cluster ``RAY_ADDRESS`` names).
        workers: Actors to make (None: the cluster's CPUs / ``cpus_per_worker``, or its GPUs
            with ``--device cuda``).
        cpus_per_worker: CPUs each actor reserves.

    Raises:
        BackendUnavailable: Ray is not installed.
        FerLiveError: Ray cannot start or reach the cluster.
    """

    def __init__(
        self,
        settings: WorkSettings,
        address: str | None,
        workers: int | None,
        cpus_per_worker: float,
    ) -> None:
        self.ray = import_ray()
        self.settings = settings
        self.cpus = cpus_per_worker
        self.gpus = 1.0 if settings.config.backend.device.is_cuda else 0.0
        self._started_here = False
        self._connect(address)
        self.workers = workers or self._fitting_workers()

    def _connect(self, address: str | None) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        try:
            if address is None and not os.environ.get("RAY_ADDRESS"):
                ray.init(
                    include_dashboard=False,
                    object_store_memory=_LOCAL_OBJECT_STORE,
                    log_to_driver=False,
                    configure_logging=False,
                )
                self._started_here = True
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        except Exception as exc:
            shown = address or os.environ.get("RAY_ADDRESS") or "this machine"
            raise FerLiveError(f"cannot start or reach Ray ({shown}): {first_line(exc)}") from None

    def _fitting_workers(self) -> int:
        resources = self.ray.cluster_resources()
        if self.gpus:
            return max(1, int(resources.get("GPU", 0)))
        return max(1, int(resources.get("CPU", 1) // self.cpus))

    def _new_actor(self) -> Any:
        remote = self.ray.remote(JobActor)
        options = {"num_cpus": self.cpus, "num_gpus": self.gpus, "max_concurrency": 2}
        return remote.options(**options).remote(self.settings)

    def run(self, todo: Sequence[JobInput], events: Events, stop: threading.Event) -> None:
        """Process ``todo``; returns when all are finished or, after ``stop``, in-flight ones are.

        Raises:
            FerLiveError: An actor could not load the model.
        """
        queue = deque(todo)
        attempts: dict[str, int] = {}
        slots = [_Slot(i) for i in range(min(self.workers, len(todo)))]
        try:
            for slot in slots:
                slot.actor = self._new_actor()
            self._wait_ready(slots)
            halted = False
            while any(s.item is not None for s in slots) or (queue and not stop.is_set()):
                if stop.is_set() and not halted:
                    halted = True
                    for slot in slots:
                        if slot.item is not None:
                            slot.actor.halt.remote()
                for slot in slots:
                    if slot.item is None and queue and not stop.is_set():
                        self._assign(slot, queue.popleft(), events)
                self._collect(slots, queue, attempts, events, stop)
        finally:
            self._shut_down(slots)

    def _wait_ready(self, slots: list[_Slot]) -> None:
        try:
            self.ray.get([slot.actor.ready.remote() for slot in slots])
        except Exception as exc:
            cause = getattr(exc, "cause", None) or exc
            raise FerLiveError(f"a Ray worker could not start: {first_line(cause)}") from None

    def _assign(self, slot: _Slot, item: JobInput, events: Events) -> None:
        slot.item = item
        slot.ref = slot.actor.process.remote(item)
        events.started(slot.index, item)

    def _collect(
        self,
        slots: list[_Slot],
        queue: deque[JobInput],
        attempts: dict[str, int],
        events: Events,
        stop: threading.Event,
    ) -> None:
        busy = {slot.ref: slot for slot in slots if slot.ref is not None}
        if not busy:
            time.sleep(_POLL_S)
            return
        done, _ = self.ray.wait(list(busy), num_returns=len(busy), timeout=_POLL_S)
        for ref in done:
            slot = busy[ref]
            item, slot.item, slot.ref = slot.item, None, None
            assert item is not None
            try:
                result = self.ray.get(ref)
            except self.ray.exceptions.RayActorError as exc:
                result = self._lost(slot, item, queue, attempts, stop, exc)
            except Exception as exc:
                if stop.is_set():  # Ctrl-C reaches the actors too: left for the next run
                    result = InputResult(item.name, item.source, PENDING)
                else:  # a bug in one input's work: that input fails
                    result = InputResult(item.name, item.source, FAILED, error=first_line(exc))
            if result is not None:
                events.finished(slot.index, item, result)
        self._report_progress([s for s in slots if s.ref is not None], events)

    def _lost(
        self,
        slot: _Slot,
        item: JobInput,
        queue: deque[JobInput],
        attempts: dict[str, int],
        stop: threading.Event,
        exc: Exception,
    ) -> InputResult | None:
        """An actor died: a new one takes its place; its input is retried once, then failed."""
        slot.actor = self._new_actor()
        attempts[item.key] = attempts.get(item.key, 0) + 1
        if stop.is_set():
            return InputResult(item.name, item.source, PENDING)
        if attempts[item.key] < _ATTEMPTS:
            logger.warning("the Ray worker on %s died; trying it again", item.source)
            queue.appendleft(item)
            return None
        error = f"the Ray worker processing it died: {first_line(exc)}"
        return InputResult(item.name, item.source, FAILED, error=error)

    def _report_progress(self, busy: list[_Slot], events: Events) -> None:
        if not busy:
            return
        refs = [slot.actor.progress.remote() for slot in busy]
        try:
            values = self.ray.get(refs, timeout=2.0)
        except Exception:  # a slow or dying actor: its progress shows next time
            return
        for slot, (frames, total) in zip(busy, values, strict=True):
            events.advanced(slot.index, frames, total)

    def _shut_down(self, slots: list[_Slot]) -> None:
        for slot in slots:
            if slot.actor is not None:
                with contextlib.suppress(Exception):  # already dead
                    self.ray.kill(slot.actor)
        if self._started_here:
            self.ray.shutdown()
