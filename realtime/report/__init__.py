"""Report: reading a run's records back.

Modules: ``read`` (the JSON Lines records, grouped by track), ``summary`` (per-track summaries),
``plot`` (timeline PNGs).
Imports earlier stages and the shared modules only.
"""
