"""Outputs: where results go.

Modules: ``sinks`` (``open_sinks``: annotated video or images, JSON Lines, CSV, a window),
``base`` (the sink contract), ``records`` (per-face JSON Lines and CSV), ``staged`` (output
files that are whole or absent), ``render`` (the overlay), ``layout`` (where labels and panels
go), ``display`` (whether a window can open).
Imports earlier stages and the shared modules only.
"""
