"""Smooth: per-track class probabilities over time.

Modules: ``table`` (the smoother table, ``make_smoother``, the ``Smoother`` contract),
``window`` (the per-track window, EMA, no smoothing), ``gus_t`` (the GUS-T smoother, and
``auto``'s choice), ``gus_head`` (its trained head and numpy operators), ``gus_kernel`` (its
compiled per-frame step), ``rings`` (its ring buffers of recent frames).
Imports earlier stages and the shared modules only.
"""
