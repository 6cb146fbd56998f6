"""Import a package while some of the modules it imports are stood in for until first used.

MediaPipe's ``vision`` package imports ``matplotlib.pyplot`` for a 3-D plotting helper, and its
``audio`` package imports ``sounddevice`` for microphone capture; fer-live calls neither, and the
two cost about 0.9 s of every run's start-up (``benchmarks/startup.py``). Likewise numba probes
for scipy's BLAS on its first call (``fer_live.smooth.gus_t``), which the GUS-T kernel never
uses. Inside ``deferred``, each such module is a stand-in that imports the real one when an
attribute of it is first read, so the helpers still work if someone calls them. The stand-ins
leave ``sys.modules`` when the block ends: a later ``import matplotlib.pyplot`` gets the real
module.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from collections.abc import Iterator
from typing import Any


class _StandIn(types.ModuleType):
    """A module that imports the module of its name when one of its attributes is first read."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):  # introspection (``__file__``, ``__path__``) imports nothing
            raise AttributeError(attr)
        if sys.modules.get(self.__name__) is self:
            raise ImportError(f"{self.__name__} was used while it was deferred")
        return getattr(importlib.import_module(self.__name__), attr)


@contextlib.contextmanager
def deferred(*names: str) -> Iterator[None]:
    """Stand in for the modules ``names`` (not yet imported) inside the block.

    A dotted name also gets a stand-in parent package (when that is not imported either), so
    ``import a.b as c`` imports nothing of ``a``.
    """
    placed: dict[str, _StandIn] = {}
    for name in names:
        if name in sys.modules:
            continue
        module = placed[name] = _StandIn(name)
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent and parent not in sys.modules:
            placed[parent] = _StandIn(parent)
            sys.modules[parent] = placed[parent]
        if parent and sys.modules[parent] is placed.get(parent):
            setattr(placed[parent], child, module)
    try:
        yield
    finally:
        for name, module in placed.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
