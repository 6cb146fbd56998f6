"""Every training method the runner knows, by name (one line per method)."""

from __future__ import annotations

from realtime.errors import ConfigError
from trainer.methods.abaw import AbawMethod
from trainer.methods.arm import ArmMethod
from trainer.methods.distill import DistillMethod
from trainer.methods.ean import EanMethod
from trainer.methods.gus import GusMethod
from trainer.methods.mre import MreMethod
from trainer.methods.protocol import Method
from trainer.methods.scl import SclMethod
from trainer.methods.ulc import UlcMethod

METHODS: dict[str, type[Method]] = {
    "baseline": Method,
    "mre": MreMethod,
    "gus": GusMethod,
    "ean": EanMethod,
    "ulc": UlcMethod,
    "abaw": AbawMethod,
    "arm": ArmMethod,
    "scl": SclMethod,
    "distill": DistillMethod,
}


def method_class(name: str) -> type[Method]:
    """The method registered as ``name``.

    Raises:
        ConfigError: Unknown name.
    """
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; valid: {', '.join(METHODS)}")
    return METHODS[name]
