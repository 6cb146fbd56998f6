"""Every training method the runner knows, by name (one line per method)."""

from __future__ import annotations

from realtime.errors import ConfigError
from trainer.methods.paper000 import GusMethod, MreMethod
from trainer.methods.protocol import Method

METHODS: dict[str, type[Method]] = {
    "baseline": Method,
    "mre": MreMethod,
    "gus": GusMethod,
}


def method_class(name: str) -> type[Method]:
    """The method registered as ``name``.

    Raises:
        ConfigError: Unknown name.
    """
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; valid: {', '.join(METHODS)}")
    return METHODS[name]
