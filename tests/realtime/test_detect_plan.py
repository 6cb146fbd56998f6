"""The detection plan: tiles and detect interval chosen from the frame size, or from the flags."""

from __future__ import annotations

import numpy as np
import pytest

from fer_live.config import MAX_TILES, DetectConfig
from fer_live.detect.plan import (
    PlannedDetector,
    auto_every,
    auto_tiles,
    probe_every,
    probe_tiles,
    still_tiles,
)
from fer_live.errors import ConfigError
from fer_live.types import FaceBoxes, Frame


class RecordingDetector:
    """Stands in for MediapipeDetector: remembers (frame index, tiles) of every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def detect(self, frame: Frame, tiles: int | None = None) -> FaceBoxes:
        self.calls.append((frame.index, tiles))
        return FaceBoxes.empty()


def frames(width: int, height: int, count: int, start: int = 0) -> list[Frame]:
    image = np.zeros((height, width, 3), np.uint8)
    return [Frame(start + i, (start + i) / 30.0, image) for i in range(count)]


@pytest.mark.parametrize(
    ("width", "height", "tiles", "every"),
    [
        (640, 360, 1, 1),
        (1280, 720, 1, 1),
        (720, 1280, 1, 1),
        (1920, 1080, 2, 3),
        (1080, 1920, 2, 3),
        (2560, 1440, 3, 3),
        (3840, 2160, 4, 3),
        (8000, 6000, 4, 3),
    ],
)
def test_auto_plan_by_frame_size(width, height, tiles, every):
    assert auto_tiles(width, height) == tiles
    assert auto_every(tiles) == every


@pytest.mark.parametrize(
    ("width", "height", "tiles"),
    [
        (192, 192, 1),  # a tight face crop: tiles would only cut the face
        (300, 300, 2),
        (480, 270, 3),
        (640, 360, 4),
        (360, 640, 4),
        (1920, 1080, 4),
        (120, 4000, 4),
    ],
)
def test_still_images_get_as_many_tiles_as_keep_them_large_enough(width, height, tiles):
    assert still_tiles(width, height) == tiles


def test_webcam_frames_are_searched_whole_with_a_tiled_probe_once_a_second():
    # given the default plan / when 640 x 360 frames with no small face come
    inner = RecordingDetector()
    planned = PlannedDetector(inner)
    results = [planned.detect(f) for f in frames(640, 360, 62)]
    # then frames 0, 30 and 60 are searched with 2 tiles and carried over 2 frames; the rest
    # are searched whole on every frame
    probes = {0, 30, 60}
    carried = {p + k for p in probes for k in (1, 2)}
    expected = [(i, 2 if i in probes else 1) for i in range(62) if i not in carried]
    assert inner.calls == expected
    assert [r is None for r in results] == [i in carried for i in range(62)]


class ScriptedDetector(RecordingDetector):
    """Returns one box of ``side`` px on the frames ``small`` lists, else a 150 px box."""

    def __init__(self, small: range) -> None:
        super().__init__()
        self.small = small

    def detect(self, frame: Frame, tiles: int | None = None) -> FaceBoxes:
        super().detect(frame, tiles)
        side = 40.0 if frame.index in self.small else 150.0
        return FaceBoxes(np.array([[10, 10, 10 + side, 10 + side]], np.float32), np.ones(1))


def test_small_faces_keep_webcam_frames_tiled_until_the_tiles_find_none():
    # given a small (40 px) face in the frames 0-8 of a 640 x 360 stream, then a 150 px one
    inner = ScriptedDetector(small=range(9))
    planned = PlannedDetector(inner)
    for frame in frames(640, 360, 16):
        planned.detect(frame)
    # then the frames are searched with tiles every 3rd frame while the small face is found,
    # and whole on every frame once a tiled search finds none
    assert inner.calls == [(0, 2), (3, 2), (6, 2), (9, 2), *[(i, 1) for i in range(12, 16)]]


@pytest.mark.parametrize(
    ("width", "height", "tiles", "every"),
    [(640, 360, 2, 30), (640, 480, 2, 40), (1280, 720, 3, 80), (320, 240, 1, None)],
)
def test_probes_keep_tiles_large_and_extra_calls_at_one_in_20_frames(width, height, tiles, every):
    assert probe_tiles(width, height) == tiles
    if every is not None:
        assert probe_every(width, height, tiles) == every


def test_720p_frames_are_probed_every_80_frames():
    inner = RecordingDetector()
    planned = PlannedDetector(inner)
    for frame in frames(1280, 720, 162):
        planned.detect(frame)
    assert [i for i, tiles in inner.calls if tiles == 3] == [0, 80, 160]


@pytest.mark.parametrize(("width", "height", "tiles"), [(640, 360, 1), (320, 240, None)])
def test_no_probe_with_tiles_set_or_on_tiny_frames(width, height, tiles):
    inner = RecordingDetector()
    planned = PlannedDetector(inner, tiles=tiles)
    for frame in frames(width, height, 4):
        planned.detect(frame)
    assert inner.calls == [(i, 1) for i in range(4)]


def test_1080p_frames_are_tiled_every_third_frame():
    inner = RecordingDetector()
    planned = PlannedDetector(inner)
    results = [planned.detect(f) for f in frames(1920, 1080, 6)]
    # the skipped frames return None: the tracker carries the boxes
    assert inner.calls == [(0, 2), (3, 2)]
    assert [r is None for r in results] == [False, True, True] * 2


@pytest.mark.parametrize(
    ("tiles", "every", "calls"),
    [
        (1, None, [(0, 1), (1, 1), (2, 1), (3, 1)]),  # --detect-tiles 1: the old default
        (3, None, [(0, 3), (3, 3)]),
        (2, 2, [(0, 2), (2, 2)]),
        (None, 1, [(0, 2), (1, 2), (2, 2), (3, 2)]),  # --detect-every 1 keeps the auto tiles
        (2, 4, [(0, 2)]),
    ],
)
def test_flags_override_the_plan(tiles, every, calls):
    inner = RecordingDetector()
    planned = PlannedDetector(inner, tiles, every)
    for frame in frames(1920, 1080, 4):
        planned.detect(frame)
    assert inner.calls == calls


def test_a_new_frame_size_is_searched_at_once():
    # given a stream at 1080p that switches to 360p on frame 1 (a skipped frame at 1080p)
    inner = RecordingDetector()
    planned = PlannedDetector(inner)
    planned.detect(frames(1920, 1080, 1)[0])
    for frame in frames(640, 360, 2, start=1):
        planned.detect(frame)
    # then the first 360p frame is detected at once (a probe: 2 tiles, then carried)
    assert inner.calls == [(0, 2), (1, 2)]


def test_one_tile_bound_for_the_flag_and_the_plan():
    # given frames far larger than any tile the detector reads well
    # when / then: the plan's own choices stop where --detect-tiles does
    assert auto_tiles(16000, 9000) == MAX_TILES
    assert still_tiles(16000, 9000) == MAX_TILES
    DetectConfig(tiles=MAX_TILES)
    with pytest.raises(ConfigError, match=rf"--detect-tiles must be in \[1, {MAX_TILES}\]"):
        DetectConfig(tiles=MAX_TILES + 1)
