"""Outputs: where results go.

Modules: ``table`` (the output formats: each one's flag, help and sink; ``open_sinks``,
``check_output_paths``), ``sinks`` (annotated video or images, a window; every sink importable),
``base`` (the sink contract, ``SinkSettings``), ``records`` (per-face JSON Lines and CSV),
``staged`` (output files that are whole or absent), ``render`` (the overlay), ``layout`` (where
labels and panels go), ``display`` (whether a window can open), ``audio_mux`` (the source's
sound in the annotated video).
Imports earlier stages and the shared modules only.
"""
