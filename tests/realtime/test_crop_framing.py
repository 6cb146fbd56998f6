"""The measured crop framing reproduces FER2013 faces from detector boxes (real images)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_live.detect.mediapipe import MediapipeDetector
from fer_live.infer.card import CropFraming
from tests.bench_scripts import bench_script

pytest.importorskip("mediapipe")

REPO = Path(__file__).resolve().parents[2]
RESULT = REPO / "benchmarks" / "results" / "crop_framing.json"


@pytest.fixture(scope="module")
def framing_script():
    with bench_script("crop_framing") as module:
        yield module


@pytest.fixture(scope="module")
def measured() -> dict:
    return json.loads(RESULT.read_text())


def test_framing_of_the_full_image_box_is_identity(framing_script):
    np.testing.assert_allclose(framing_script.framing_of(np.array([0, 0, 192, 192])), [1, 0, 0])
    scale, sx, sy = framing_script.framing_of(np.array([48, 24, 144, 120]))
    assert scale == pytest.approx(2.0) and sx == pytest.approx(0.0) and sy == pytest.approx(0.25)


def test_recorded_framing_is_plausible(measured):
    assert measured["n"] >= 1000 and measured["detection_rate"] > 0.9
    framing = CropFraming(measured["scale"], measured["shift_x"], measured["shift_y"])
    assert 1.0 < framing.scale < 1.5
    assert abs(framing.shift_x) < 0.05 and -0.2 < framing.shift_y < 0.0
    lo, hi = measured["iqr"]["scale"]
    assert lo <= framing.scale <= hi
    assert "crop_framing.py" in measured["command"]


def test_crop_faces_reproduces_fer_faces(framing_script, measured, shared_dir):
    # given 24 real FERPlus validation faces upscaled to 192 px, and the recorded framing
    ferplus = shared_dir / "data" / "ferplus"
    paths = framing_script.sample_images(ferplus, ("FER2013Valid",), 24, seed=1)
    framing = CropFraming(measured["scale"], measured["shift_x"], measured["shift_y"])
    bare = framing_script.VARIANTS[0]
    # when the detector finds them
    with MediapipeDetector() as detector:
        found = []
        for path in paths:
            image = framing_script.upscale(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
            found.append((path, framing_script.detect_face(detector, image, bare)))
    detected = [row for row in found if row[1] is not None]
    assert len(detected) >= 20
    # then crop_faces with the measured framing recovers the training crop ...
    tuned = framing_script.verify(detected, framing)
    identity = framing_script.verify(detected, CropFraming())
    assert tuned["median_square_iou"] > 0.75
    # ... better than cropping the bare detector box would
    assert tuned["mean_abs_pixel_error"] < identity["mean_abs_pixel_error"]
    assert tuned["mean_square_iou"] > identity["mean_square_iou"]
