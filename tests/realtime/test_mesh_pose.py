"""The face mesh's maths: pose from a rotation and back, the sign convention's geometry, the
blendshapes' mirror map and the crop around a box (no model needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fer_live.mesh.faces import BLENDSHAPES, MESH_PX, MIRROR, MIRRORED, square_crop, turned
from fer_live.mesh.pose import pose_from_matrix, rotation_of
from fer_live.types import FacePose


def _rz(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _ry(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rx(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _angles(pose: FacePose) -> tuple[float, float, float]:
    return (pose.yaw, pose.pitch, pose.roll)


# MediaPipe's camera space: x right, y up, z toward the viewer.
@pytest.mark.parametrize(
    ("rotation", "expected"),
    [
        (np.eye(3), (0.0, 0.0, 0.0)),
        # about z, counterclockwise on the screen: roll
        (_rz(25.0), (0.0, 0.0, 25.0)),
        (_rz(-170.0), (0.0, 0.0, -170.0)),
        # about y, the face's forward axis (+z) toward +x, the image's right: yaw
        (_ry(40.0), (40.0, 0.0, 0.0)),
        # about x by -a: forward (+z) toward +y, up: pitch a
        (_rx(-15.0), (0.0, 15.0, 0.0)),
        (_rx(20.0), (0.0, -20.0, 0.0)),
        (_rz(10.0) @ _ry(-30.0) @ _rx(-5.0), (-30.0, 5.0, 10.0)),
    ],
)
def test_known_rotations_give_their_angles(rotation: np.ndarray, expected: tuple) -> None:
    assert _angles(pose_from_matrix(rotation)) == pytest.approx(expected, abs=1e-9)


def test_the_forward_axis_points_where_the_signs_say() -> None:
    # given a face turned toward the image's right and looking up
    forward = rotation_of(FacePose(yaw=30.0, pitch=20.0, roll=0.0)) @ np.array([0.0, 0.0, 1.0])
    # then its forward axis points right (+x) and up (+y)
    assert forward[0] > 0.4 and forward[1] > 0.3


@pytest.mark.parametrize("yaw", [-60.0, -20.0, 0.0, 35.0, 80.0])
@pytest.mark.parametrize("pitch", [-45.0, 0.0, 30.0])
@pytest.mark.parametrize("roll", [-150.0, -30.0, 0.0, 10.0, 90.0])
def test_rotation_of_and_pose_from_matrix_round_trip(yaw: float, pitch: float, roll: float) -> None:
    pose = FacePose(yaw, pitch, roll)
    assert _angles(pose_from_matrix(rotation_of(pose))) == pytest.approx(_angles(pose), abs=1e-9)


@pytest.mark.parametrize("turn", [-30.0, -12.5, 0.0, 7.0, 30.0])
def test_turning_the_image_adds_the_angle_to_roll_only(turn: float) -> None:
    # given a pose; when the scene turns about the camera's axis (the image plane)
    pose = FacePose(yaw=-25.0, pitch=12.0, roll=5.0)
    turned = pose_from_matrix(_rz(turn) @ rotation_of(pose))
    # then roll grows by the turn, yaw and pitch stay
    assert _angles(turned) == pytest.approx((-25.0, 12.0, 5.0 + turn), abs=1e-9)


@pytest.mark.parametrize(("yaw", "pitch", "roll"), [(20.0, -10.0, 15.0), (-50.0, 25.0, -40.0)])
def test_mirroring_negates_yaw_roll_keeps_pitch(yaw: float, pitch: float, roll: float) -> None:
    mirrored = pose_from_matrix(MIRROR @ rotation_of(FacePose(yaw, pitch, roll)) @ MIRROR)
    assert _angles(mirrored) == pytest.approx((-yaw, pitch, -roll), abs=1e-9)


def test_a_transformation_matrix_with_translation_and_scale_gives_the_rotation_s_angles() -> None:
    # given MediaPipe's 4 x 4 form, with a little scale and noise in the rotation block
    pose = FacePose(12.0, -7.0, 33.0)
    matrix = np.eye(4)
    matrix[:3, :3] = 1.02 * rotation_of(pose) + 1e-4
    matrix[:3, 3] = (7.5, -2.1, -40.0)
    # then the angles are the rotation's
    assert _angles(pose_from_matrix(matrix)) == pytest.approx(_angles(pose), abs=0.05)


def test_the_sum_of_two_rotations_reads_as_their_mean() -> None:
    mean = pose_from_matrix(_rz(10.0) + _rz(30.0))
    assert _angles(mean) == pytest.approx((0.0, 0.0, 20.0), abs=1e-9)


@pytest.mark.parametrize("shape", [(3, 4), (4,), (2, 2)])
def test_a_matrix_of_another_shape_is_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"must have shape \(4, 4\)"):
        pose_from_matrix(np.zeros(shape))


def test_blendshapes_mirror_left_and_right() -> None:
    assert len(set(BLENDSHAPES)) == 52 and BLENDSHAPES[0] == "_neutral"
    # the map is its own inverse and swaps each Left with its Right
    assert (MIRRORED[MIRRORED] == np.arange(52)).all()
    swapped = {BLENDSHAPES[i]: BLENDSHAPES[j] for i, j in enumerate(MIRRORED) if i != j}
    assert swapped["eyeBlinkLeft"] == "eyeBlinkRight" and swapped["jawRight"] == "jawLeft"
    assert all(("Left" in a) != ("Left" in b) for a, b in swapped.items()) and len(swapped) == 40
    assert BLENDSHAPES[MIRRORED[BLENDSHAPES.index("jawOpen")]] == "jawOpen"


def test_the_crop_is_a_square_centred_on_the_box() -> None:
    # given a frame with a white box in the middle
    image = np.zeros((200, 300, 3), np.uint8)
    image[80:120, 130:170] = 255
    # when cropped around it
    crop = square_crop(image, np.array([130.0, 80.0, 170.0, 120.0]))
    # then the crop is twice the box, the box in its middle
    assert crop.shape == (80, 80, 3)
    assert (crop[20:60, 20:60] == 255).all() and crop[:20].max() == 0 and crop[60:].max() == 0


def test_the_crop_is_black_beyond_the_frame_and_shrunk_when_large() -> None:
    # given a grey frame and a large box at its top-left corner
    image = np.full((600, 800, 3), 128, np.uint8)
    crop = square_crop(image, np.array([-50.0, -50.0, 250.0, 250.0]))
    # then the crop (600 px around the box's centre) is shrunk to MESH_PX, black where it left
    # the frame (its first third on each axis), grey inside
    assert crop.shape == (MESH_PX, MESH_PX, 3)
    third = MESH_PX // 3
    assert crop[: third - 2].max() == 0 and crop[:, : third - 2].max() == 0
    assert (crop[third + 2 :, third + 2 :] == 128).all()


def test_a_box_outside_the_frame_gives_a_black_crop() -> None:
    crop = square_crop(np.full((100, 100, 3), 9, np.uint8), np.array([500.0, 500.0, 540.0, 540.0]))
    assert crop.shape == (80, 80, 3) and crop.max() == 0


def test_turned_turns_the_crop_counterclockwise_about_its_centre() -> None:
    # given a crop with a white dot right of its centre
    crop = np.zeros((41, 41, 3), np.uint8)
    crop[20, 35] = 255
    # when turned 90 degrees counterclockwise on the screen, the dot is above the centre
    y, x = np.argwhere(turned(crop, 90.0)[:, :, 0] > 100)[0]
    assert (y, x) == (5, 20)
