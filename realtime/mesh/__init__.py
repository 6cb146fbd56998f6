"""Mesh: head pose and blendshapes of the tracked faces (``--face-mesh``, opt-in).

Modules: ``pose`` (yaw, pitch and roll from the landmarker's facial transformation matrix, and
back), ``faces`` (``FaceMesher``: MediaPipe's face landmarker on a square crop around each
tracked box, ``BLENDSHAPES``). Imports earlier stages and the shared modules only.
"""

from fer_live.mesh.faces import BLENDSHAPES, FaceMesher
from fer_live.mesh.pose import pose_from_matrix, rotation_of

__all__ = ["BLENDSHAPES", "FaceMesher", "pose_from_matrix", "rotation_of"]
