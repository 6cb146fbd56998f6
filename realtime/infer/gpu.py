"""Shared pieces of the GPU backends: torch CUDA import, chunk planning, pinned host staging.

A GPU backend holds device buffers for its largest batch. A call's batch is cut into chunks of
at most that size; each chunk is padded to a size the backend can run (a captured CUDA-graph
size, or the TensorRT profile's minimum), staged through pinned host memory and copied with
non-blocking copies on the backend's stream. ``plan_chunks`` and ``pad_to_captured`` are pure,
so the planning is tested on any machine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fer_live.errors import BackendUnavailable
from fer_live.types import Device


@dataclass(frozen=True)
class Chunk:
    """Rows ``start:stop`` of a batch, run as a batch of ``padded >= stop - start`` rows."""

    start: int
    stop: int
    padded: int

    @property
    def rows(self) -> int:
        return self.stop - self.start


def pad_to_captured(batch: int, sizes: Sequence[int]) -> int:
    """The smallest captured batch size that holds ``batch`` rows.

    Args:
        batch: Rows to run, >= 1.
        sizes: Captured batch sizes (any order).

    Returns:
        The smallest size >= ``batch``.

    Raises:
        ValueError: ``batch`` < 1, no sizes, or ``batch`` is above the largest size.

    Example:
        >>> pad_to_captured(5, (1, 2, 4, 8))
        8
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    fitting = [size for size in sizes if size >= batch]
    if not fitting:
        largest = max(sizes, default=0)
        raise ValueError(f"batch {batch} is above the largest captured size {largest}")
    return min(fitting)


def plan_chunks(batch: int, max_size: int, pad: Callable[[int], int]) -> list[Chunk]:
    """Cut ``batch`` rows into chunks of at most ``max_size`` rows, each padded by ``pad``.

    Args:
        batch: Rows in the call, >= 0.
        max_size: Most rows one run takes, >= 1.
        pad: Maps a chunk's row count to the batch size it runs at.

    Returns:
        Chunks covering ``0:batch`` in order; empty for an empty batch.

    Raises:
        ValueError: Bad sizes, or ``pad`` returns fewer rows than the chunk has.
    """
    if batch < 0 or max_size < 1:
        raise ValueError(f"need batch >= 0 and max_size >= 1, got {batch} and {max_size}")
    chunks = []
    for start in range(0, batch, max_size):
        stop = min(start + max_size, batch)
        padded = pad(stop - start)
        if padded < stop - start:
            raise ValueError(f"pad({stop - start}) returned {padded}, fewer rows than the chunk")
        chunks.append(Chunk(start, stop, padded))
    return chunks


def import_torch_cuda(device: Device) -> Any:
    """Import torch and check that ``device`` (``cuda`` or ``cuda:N``) is usable.

    Raises:
        BackendUnavailable: torch is missing, has no CUDA, or the device index does not exist.
    """
    if not device.is_cuda:
        raise BackendUnavailable(f"GPU backends run on cuda[:N], not on {str(device)!r}")
    try:
        import torch
    except ImportError:
        raise BackendUnavailable('torch is not installed: pip install "fer-live[gpu]"') from None
    if not torch.cuda.is_available():
        raise BackendUnavailable("torch sees no CUDA device here")
    index = device.index or 0
    if index >= torch.cuda.device_count():
        raise BackendUnavailable(f"no CUDA device {index}; found {torch.cuda.device_count()}")
    return torch


class PinnedStaging:
    """Pinned host buffers for one input and several outputs, for non-blocking copies.

    Args:
        torch: The torch module.
        max_batch: Rows the buffers hold.
        input_shape: Per-row input shape, e.g. (C, S, S).
        output_widths: Per-row width of each output.
    """

    def __init__(
        self, torch: Any, max_batch: int, input_shape: Sequence[int], output_widths: Sequence[int]
    ) -> None:
        self._input = torch.empty((max_batch, *input_shape), dtype=torch.float32, pin_memory=True)
        self._input_np = self._input.numpy()
        self._outputs = [
            torch.empty((max_batch, width), dtype=torch.float32, pin_memory=True)
            for width in output_widths
        ]

    def upload(self, rows: np.ndarray, device_input: Any) -> None:
        """Copy rows into pinned memory, then start their copy into ``device_input[:n]``."""
        n = len(rows)
        np.copyto(self._input_np[:n], rows)
        device_input[:n].copy_(self._input[:n], non_blocking=True)

    def download(self, device_outputs: Sequence[Any], n: int) -> None:
        """Start copying the first ``n`` rows of each device output into pinned memory."""
        for host, dev in zip(self._outputs, device_outputs, strict=True):
            host[:n].copy_(dev[:n].reshape(n, -1), non_blocking=True)

    def results(self, n: int) -> list[np.ndarray]:
        """Copies of the first ``n`` rows of each output (call after the stream is synced)."""
        return [host[:n].numpy().copy() for host in self._outputs]


def cuda_device_name(torch: Any, device: Device) -> str:
    """``NVIDIA H100 80GB HBM3 (cc 9.0)`` for a usable CUDA device."""
    index = device.index or 0
    major, minor = torch.cuda.get_device_capability(index)
    return f"{torch.cuda.get_device_name(index)} (cc {major}.{minor})"
