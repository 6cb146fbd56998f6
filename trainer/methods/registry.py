"""Every training method the runner knows, by name (one line per method).

Entries name their class as ``module:attribute`` and are imported on first use, so the registry
imports no method module: a method that needs the registry itself (distillation loads teacher
runs of any method) does not make an import cycle.
"""

from __future__ import annotations

import importlib

from fer_live.errors import ConfigError
from fer_live.trainer.methods.protocol import Method

METHODS: dict[str, str] = {
    "baseline": "fer_live.trainer.methods.protocol:Method",
    "mre": "fer_live.trainer.methods.mre:MreMethod",
    "gus": "fer_live.trainer.methods.gus:GusMethod",
    "ean": "fer_live.trainer.methods.ean:EanMethod",
    "ulc": "fer_live.trainer.methods.ulc:UlcMethod",
    "abaw": "fer_live.trainer.methods.abaw:AbawMethod",
    "arm": "fer_live.trainer.methods.arm:ArmMethod",
    "scl": "fer_live.trainer.methods.scl:SclMethod",
    "distill": "fer_live.trainer.methods.distill:DistillMethod",
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
