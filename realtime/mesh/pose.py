"""Head pose from the face landmarker's facial transformation matrix, in degrees.

The matrix maps MediaPipe's canonical face model into its metric camera space, which is
right-handed with x to the image's right, y up and z toward the viewer. Its rotation is split as

    R = Rz(roll) @ Ry(yaw) @ Rx(-pitch)

(rotations about the camera's axes: pitch first, then yaw, then roll). Roll is the outermost
factor, so turning the image in its plane by an angle adds exactly that angle to roll and leaves
yaw and pitch alone; mirroring the image left-right (x -> -x) negates yaw and roll and keeps
pitch. In image terms: yaw > 0 turns the face toward the image's right, pitch > 0 looks up, roll
> 0 tilts the head counterclockwise on the screen.
"""

from __future__ import annotations

import math

import numpy as np

from fer_live.types import FacePose, check_shape


def _nearest_rotation(matrix: np.ndarray) -> np.ndarray:
    """The rotation closest to the top-left 3 x 3 block (its polar factor; drops any scale)."""
    u, _, vt = np.linalg.svd(np.asarray(matrix, np.float64)[:3, :3])
    rotation = u @ vt
    if np.linalg.det(rotation) < 0:  # a reflection: flip the weakest axis back
        u[:, -1] *= -1
        rotation = u @ vt
    return rotation


def pose_from_matrix(matrix: np.ndarray) -> FacePose:
    """Yaw, pitch and roll (degrees) of a facial transformation matrix (4, 4) or rotation (3, 3).

    Raises:
        ValueError: The matrix is neither (4, 4) nor (3, 3).
    """
    matrix = np.asarray(matrix)
    if matrix.shape != (3, 3):
        check_shape("facial transformation matrix", matrix, (4, 4))
    r = _nearest_rotation(matrix)
    yaw = math.asin(float(np.clip(-r[2, 0], -1.0, 1.0)))
    pitch = -math.atan2(r[2, 1], r[2, 2])
    roll = math.atan2(r[1, 0], r[0, 0])
    return FacePose(math.degrees(yaw), math.degrees(pitch), math.degrees(roll))


def rotation_of(pose: FacePose) -> np.ndarray:
    """The rotation (3, 3) with this pose: ``pose_from_matrix``'s inverse."""
    yaw, pitch, roll = (math.radians(v) for v in (pose.yaw, pose.pitch, pose.roll))
    cz, sz = math.cos(roll), math.sin(roll)
    cy, sy = math.cos(yaw), math.sin(yaw)
    cx, sx = math.cos(-pitch), math.sin(-pitch)
    rz = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]])
    return rz @ ry @ rx
