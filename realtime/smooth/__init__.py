"""Smooth: per-track class probabilities over time.

Modules: ``table`` (the smoother registry, ``make_smoother``), ``names`` (the registered names),
``window`` (the per-track window, EMA), ``gus_t`` (the GUS-T smoother), ``gus_head`` (its trained
head and numpy operators), ``gus_kernel`` (its compiled per-frame step), ``rings`` (its ring
buffers of recent frames).
Imports earlier stages and the shared modules only.
"""
