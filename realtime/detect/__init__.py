"""Detect: where the faces are in each frame.

Modules: ``table`` (the detectors ``--detector`` names, ``open_detector``, the ``TilingDetector``
contract), ``mediapipe`` (``MediapipeDetector``, BlazeFace), ``plan`` (tiles and search cadence
per frame size, ``PlannedDetector``), ``models`` (the shipped weights folder, file checksums,
the detector's model files), ``landmarker`` (MediaPipe's face landmarker, for still images'
face evidence and the face mesh), ``native_log`` (muting native libraries' stderr).
Imports capture and the shared modules only.
"""
