"""Names of the registered temporal smoothers, readable without importing any smoother.

``config`` validates ``--smooth`` and ``cli`` writes its help from these names; importing
``realtime.smooth`` for that would load every smoother (and GUS-T's head loader) at start-up.
A test checks that ``realtime.smooth.SMOOTHERS`` registers exactly these names.
"""

from __future__ import annotations

SMOOTHER_NAMES = ("auto", "ema", "graph", "none")
# Smoothers built from the model file (they read weights that ship beside it).
MODEL_AWARE = frozenset({"auto", "graph"})
