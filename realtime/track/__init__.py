"""Track: stable face ids across frames.

Modules: ``iou`` (``IouTracker``: IoU matching, tracks carried through frames without detection).
Imports earlier stages and the shared modules only.
"""
