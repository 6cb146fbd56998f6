"""IouTracker in crowds: close faces, faces that cross, faces that leave and come back.

Scripted trajectories with seeded box jitter, run with detection on every frame and on every
2nd frame (tiled crowd frames; the tracker carries the boxes in between). The tracker runs with
the product's settings (``TrackConfig``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from fer_live.config import TrackConfig
from fer_live.track.iou import IouTracker
from fer_live.types import FaceBoxes

# centre x, centre y, side of every face at frame i (rows: faces)
Scene = Callable[[int], np.ndarray]


def tracker() -> IouTracker:
    cfg = TrackConfig()
    return IouTracker(cfg.iou_threshold, cfg.max_age, cfg.min_hits, cfg.confirm_score)


def jittered(faces: np.ndarray, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """xyxy boxes (N, 4) of faces (N, 3) with each edge moved by up to ``jitter`` x side."""
    cx, cy, side = faces[:, 0], faces[:, 1], faces[:, 2]
    xyxy = np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)
    return xyxy + rng.uniform(-jitter, jitter, xyxy.shape) * side[:, None]


def play(
    scene: Scene,
    frames: int,
    every: int = 1,
    hidden: Callable[[int, int], bool] = lambda face, i: False,
    jitter: float = 0.03,
    seed: int = 0,
) -> dict[int, list[tuple[int, int]]]:
    """Run the tracker; for each ground-truth face, the (frame, track id) pairs it was given.

    A track is assigned to the face whose true box centre is nearest to the track's box centre.
    """
    rng = np.random.default_rng(seed)
    trk = tracker()
    seen: dict[int, list[tuple[int, int]]] = {}
    for i in range(frames):
        faces = scene(i)
        boxes = None
        if i % every == 0:
            keep = [f for f in range(len(faces)) if not hidden(f, i)]
            xyxy = jittered(faces[keep], rng, jitter).astype(np.float32)
            boxes = FaceBoxes(xyxy, np.full(len(keep), 0.95, np.float32))
        tracks = trk.update(boxes, i)
        for box, tid in zip(tracks.xyxy, tracks.track_id, strict=True):
            centre = (box[:2] + box[2:]) / 2
            face = int(np.argmin(np.linalg.norm(faces[:, :2] - centre, axis=1)))
            seen.setdefault(face, []).append((i, int(tid)))
    return seen


def ids_of(seen: dict[int, list[tuple[int, int]]]) -> dict[int, set[int]]:
    return {face: {tid for _, tid in pairs} for face, pairs in seen.items()}


def grid_scene(rows: int, cols: int, pitch: float, side: float) -> Scene:
    """Faces on a grid, each swaying a little on its own phase."""

    def scene(i: int) -> np.ndarray:
        out = []
        for k in range(rows * cols):
            r, c = divmod(k, cols)
            sway = 0.1 * side * np.sin(0.15 * i + k)
            out.append((c * pitch + side + sway, r * pitch + side, side))
        return np.asarray(out, np.float64)

    return scene


@pytest.mark.parametrize("every", [1, 2])
@pytest.mark.parametrize("gap", [0.08, 0.25])
def test_close_faces_keep_one_id_each(every, gap):
    # given a 3 x 4 crowd whose faces are only `gap` x their size apart, jittering
    scene = grid_scene(3, 4, pitch=100 * (1 + gap), side=100)
    # when
    ids = ids_of(play(scene, 120, every=every, jitter=0.04))
    # then: every face has exactly one id, and no two faces share one
    assert len(ids) == 12 and all(len(v) == 1 for v in ids.values())
    assert len(set.union(*ids.values())) == 12


@pytest.mark.parametrize("every", [1, 2])
@pytest.mark.parametrize("speed", [3.0, 8.0, 15.0])
def test_faces_that_cross_keep_their_ids(every, speed):
    # given two faces walking past each other (boxes overlap on the way), both detected
    def scene(i: int) -> np.ndarray:
        return np.array([(100 + speed * i, 200, 100), (100 + speed * (80 - i), 230, 100)])

    # when
    seen = play(scene, 81, every=every)
    # then: each keeps one id through the crossing
    ids = ids_of(seen)
    assert ids[0] != ids[1] and all(len(v) == 1 for v in ids.values())


@pytest.mark.parametrize("hidden_frames", [4, 10])
@pytest.mark.parametrize("speed", [3.0, 8.0])
def test_face_hidden_behind_another_while_crossing_keeps_its_id(speed, hidden_frames):
    # given two faces crossing at frame 40; the one behind is not detected around it
    def scene(i: int) -> np.ndarray:
        return np.array([(100 + speed * i, 200, 100), (100 + speed * (80 - i), 210, 100)])

    def behind(face: int, i: int) -> bool:
        return face == 1 and abs(i - 40) < hidden_frames / 2

    # when
    ids = ids_of(play(scene, 81, hidden=behind))
    # then: the hidden face comes back out with its own id, not a new one or the front one's
    assert all(len(v) == 1 for v in ids.values()) and ids[0] != ids[1]


@pytest.mark.parametrize("every", [1, 2])
@pytest.mark.parametrize("missing", [2, 5, 8])
@pytest.mark.parametrize("speed", [0.0, 4.0])
def test_face_that_leaves_for_a_few_frames_gets_its_id_back(every, missing, speed):
    # given three faces in a row; the middle one is not detected for `missing` frames
    def scene(i: int) -> np.ndarray:
        return np.array([(100, 200, 120), (300 + speed * i, 200, 120), (600, 200, 120)])

    def away(face: int, i: int) -> bool:
        return face == 1 and 30 <= i < 30 + missing

    # when
    seen = play(scene, 70, every=every, hidden=away)
    # then: the face is back under its old id, the others never changed
    ids = ids_of(seen)
    assert all(len(v) == 1 for v in ids.values()), ids
    assert max(i for i, _ in seen[1]) == 69


def test_face_that_turns_back_while_missing_gets_its_id_back():
    # given a face walking right that stops and walks back while the detector misses it
    def scene(i: int) -> np.ndarray:
        x = 200 + 10 * i if i < 34 else 200 + 10 * 34 - 10 * (i - 34)
        return np.array([(x, 200, 120)])

    def away(face: int, i: int) -> bool:
        return 30 <= i < 36

    # when
    ids = ids_of(play(scene, 60, hidden=away))
    # then
    assert len(ids[0]) == 1


@pytest.mark.parametrize("out_frames", [2, 4, 6])
@pytest.mark.parametrize("speed", [3.0, 8.0])
def test_face_that_steps_out_of_the_frame_and_back_gets_its_id_back(speed, out_frames):
    # given a face that walks out of a 640 px frame's right edge and comes back
    turn = 40

    def scene(i: int) -> np.ndarray:
        x = 400 + speed * min(i, turn) - speed * max(0, i - turn)
        return np.array([(x, 200, 120)])

    edge = 400 + speed * turn - speed * out_frames / 2

    def outside(face: int, i: int) -> bool:
        return bool(scene(i)[0, 0] > edge)

    # when
    ids = ids_of(play(scene, 90, hidden=outside))
    # then
    assert len(ids[0]) == 1
