"""Names of the registered temporal smoothers, readable without importing any smoother.

``config`` validates ``--smooth`` and ``commands.app`` writes its help from these names; importing
``fer_live.smooth.table`` for that would load every smoother (and GUS-T's head loader) at start-up.
A test checks that ``fer_live.smooth.table.SMOOTHERS`` registers exactly these names.
"""

from __future__ import annotations

SMOOTHER_NAMES = ("auto", "ema", "graph", "none")
# Smoothers built from the model file (they read weights that ship beside it).
MODEL_AWARE = frozenset({"auto", "graph"})
