"""``--device`` parsed once into a typed value: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.

Backends and the ``auto`` rules take a ``Device`` and never split strings themselves, so a
malformed value (``cuda:x``, ``cuda:-1``) fails here, naming the flag, instead of in ``int()``
deep inside a backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fer_live.errors import ConfigError

DeviceKind = Literal["cpu", "cuda", "auto"]
_KINDS: tuple[DeviceKind, ...] = ("cpu", "cuda", "auto")


@dataclass(frozen=True)
class Device:
    """Where a model runs.

    Attributes:
        kind: ``cpu``, ``cuda`` or ``auto`` (the best this machine has).
        index: The GPU for ``cuda:N``; None for plain ``cuda`` (torch's current device).
    """

    kind: DeviceKind
    index: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"Device.kind must be one of {_KINDS}, got {self.kind!r}")
        if self.index is not None and (self.kind != "cuda" or self.index < 0):
            raise ValueError(f"Device.index needs kind 'cuda' and index >= 0, got {self!r}")

    @property
    def is_cuda(self) -> bool:
        return self.kind == "cuda"

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"


CPU = Device("cpu")
CUDA = Device("cuda")
AUTO = Device("auto")


def parse_device(value: str | Device, flag: str = "--device") -> Device:
    """``"cuda:1"`` -> ``Device("cuda", 1)``; a ``Device`` comes back as it is.

    Raises:
        ConfigError: Not ``cpu``, ``cuda``, ``cuda:N`` (N >= 0) or ``auto``; names ``flag``.

    Example:
        >>> parse_device("cuda:1")
        Device(kind='cuda', index=1)
    """
    if isinstance(value, Device):
        return value
    text = value.strip()
    plain = {"cpu": CPU, "cuda": CUDA, "auto": AUTO}
    if text in plain:
        return plain[text]
    kind, _, index = text.partition(":")
    if kind == "cuda" and index.isascii() and index.isdigit():
        return Device("cuda", int(index))
    raise ConfigError(f"{flag} must be cpu, cuda, cuda:N (N >= 0) or auto, got {value!r}")
