"""Capture: frames from cameras, streams, video files, images and folders.

Modules: ``sources`` (``open_source`` and every frame source), ``base`` (the source contract),
``live`` (a camera or stream read on its own thread), ``pyav`` (PyAV decoding of URLs),
``read_ahead`` (decoding a file ahead on a thread), ``redact`` (credentials masked in URLs).
The first stage: it imports only the shared modules at the top of ``fer_live``.
"""
