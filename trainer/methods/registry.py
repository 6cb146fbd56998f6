"""Every training method the runner knows, by name (one line per method).

Entries name their class as ``module:attribute`` and are imported on first use, so the registry
imports no method module: a method that needs the registry itself (distillation loads teacher
runs of any method) does not make an import cycle.
"""

from __future__ import annotations

import importlib

from realtime.errors import ConfigError
from trainer.methods.protocol import Method

METHODS: dict[str, str] = {
    "baseline": "trainer.methods.protocol:Method",
    "mre": "trainer.methods.mre:MreMethod",
    "gus": "trainer.methods.gus:GusMethod",
    "ean": "trainer.methods.ean:EanMethod",
    "ulc": "trainer.methods.ulc:UlcMethod",
    "abaw": "trainer.methods.abaw:AbawMethod",
    "arm": "trainer.methods.arm:ArmMethod",
    "scl": "trainer.methods.scl:SclMethod",
    "distill": "trainer.methods.distill:DistillMethod",
}


def method_class(name: str) -> type[Method]:
    """The method registered as ``name``.

    Raises:
        ConfigError: Unknown name.
    """
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; valid: {', '.join(METHODS)}")
    module, attribute = METHODS[name].split(":")
    cls = getattr(importlib.import_module(module), attribute)
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ConfigError(f"method {name!r} ({METHODS[name]}) is not a Method")
    return cls
