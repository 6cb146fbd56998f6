"""How each video frame is searched for faces: tiles chosen from its size, and how often.

BlazeFace short-range reads the image at 128 x 128 and finds faces of at least about 16 % of the
searched image's longer side (``benchmarks/results/crowd.md``): a 640 x 360 or 1280 x 720
frame is searched whole, but the ~200 px faces of a 1080p crowd need tiles. A tiled search costs
one detector call per tile, so tiled frames are searched every 3rd frame and the tracker carries
the boxes in between (``IouTracker.update(None, ...)``): a 1080p frame then costs one detector
call a frame on average, as a whole-frame search on every frame did. Untiled frames are searched
on every frame, but for the probes below.

A frame searched whole misses the faces under that floor (about 100 px at 640 x 360, 200 px at
1280 x 720): people further from a webcam. So now and then (``probe_every``) such a frame is
searched with tiles too (``probe_tiles``: tiles of at least ``PROBE_TILE_MIN_PX``, up to 3
across), then carried like a tiled frame. While the tiled searches keep finding a face under
the floor, the frame size is searched as a tiled one (every 3rd frame, the tracker carrying the
boxes); once they find none, the frames are searched whole on every frame again. A probe at
640 x 360 costs no extra detector call (whole frame + 2 tiles for 3 frames), so it comes every
30 frames; at 1280 x 720 it costs 4 (whole frame + 6 tiles), so it comes every 80 frames, which
keeps the probes' share of detector calls at 5 % (``benchmarks/results/webcam_faces.md``).
``--detect-tiles 1`` turns them off.

A still image is searched once, so it can afford more: as many tiles as keep each at least
``STILL_TILE_MIN_PX`` on its longer side (a 640 x 360 photo gets 4 across, 12 tiles, and faces
down to about 35 px). Weak tile hits get a second look (``MediapipeDetector(recheck=True)``):
in video only those no trusted box covers, so a crowd of faces the tiles find clearly costs no
extra detector call; in stills every one, as the closer look frames the face better.
"""

from __future__ import annotations

import numpy as np

from fer_live.config import MAX_TILES
from fer_live.detect.mediapipe import tile_grid
from fer_live.detect.table import TilingDetector
from fer_live.types import FaceBoxes, Frame

# Frames up to this longer side are searched whole (a 720p 2 x 2 grid of 220 px faces: all
# found); larger ones get tiles of at most TILE_MAX_PX, the size at which 200 px faces are found.
WHOLE_FRAME_MAX_PX = 1280
TILE_MAX_PX = 1100
CARRY_EVERY = 3
# Tiles smaller than this would show BlazeFace (128 px input) faces too small to read anyway.
STILL_TILE_MIN_PX = 160
# Faces under this share of the searched image's longer side are where a whole-frame search
# starts to miss them (crowd.md: about half found at 16 %).
SMALL_FACE_SHARE = 0.16
PROBE_EVERY = 30  # frames between probes that cost no extra detector call
PROBE_FRAMES_PER_EXTRA_CALL = 20  # else: at most one extra call per this many frames (5 %)
PROBE_TILE_MIN_PX = 320
PROBE_MAX_TILES = 3


def auto_tiles(width: int, height: int) -> int:
    """Tiles across the longer side for a frame of this size (1 = the whole frame only)."""
    long_side = max(width, height)
    if long_side <= WHOLE_FRAME_MAX_PX:
        return 1
    for tiles in range(2, MAX_TILES + 1):
        side = max(x1 - x0 for x0, _, x1, _ in tile_grid(height, width, tiles))
        if side <= TILE_MAX_PX:
            return tiles
    return MAX_TILES


def most_tiles(width: int, height: int, min_px: int, most: int) -> int:
    """The most tiles across the longer side, up to ``most``, that keep every tile at least
    ``min_px`` on its longer side (1: none do)."""
    for tiles in range(most, 1, -1):
        side = max(max(x1 - x0, y1 - y0) for x0, y0, x1, y1 in tile_grid(height, width, tiles))
        if side >= min_px:
            return tiles
    return 1


def still_tiles(width: int, height: int) -> int:
    """Tiles across the longer side for a still image: the most that keep tiles large enough."""
    return most_tiles(width, height, STILL_TILE_MIN_PX, MAX_TILES)


def probe_tiles(width: int, height: int) -> int:
    """Tiles across the longer side for a small-face probe of a frame searched whole (1: none)."""
    return most_tiles(width, height, PROBE_TILE_MIN_PX, PROBE_MAX_TILES)


def probe_every(width: int, height: int, tiles: int) -> int:
    """Frames between probes with ``tiles``: 30, or more where a probe costs extra calls."""
    extra = 1 + len(tile_grid(height, width, tiles)) - CARRY_EVERY
    return max(PROBE_EVERY, PROBE_FRAMES_PER_EXTRA_CALL * extra)


def has_small_face(boxes: FaceBoxes, width: int, height: int) -> bool:
    """Whether a box is under what a whole-frame search finds reliably."""
    sides = np.maximum(boxes.xyxy[:, 2] - boxes.xyxy[:, 0], boxes.xyxy[:, 3] - boxes.xyxy[:, 1])
    return bool((sides < SMALL_FACE_SHARE * max(width, height)).any())


def auto_every(tiles: int) -> int:
    """Detect on every k-th frame: 1 untiled, else 3.

    On the 1080p crowd, boxes the tracker carries over 2 frames overlap that frame's detection
    with IoU 0.95 on average, as much as two detections of consecutive frames do (0.96);
    ``benchmarks/crowd.py`` measures it.
    """
    return 1 if tiles <= 1 else CARRY_EVERY


class PlannedDetector:
    """Runs the detector with the tiles and on the frames the frame size calls for.

    Args:
        detector: The face detector.
        tiles: Tiles across the longer side (1 to ``MAX_TILES``), or None to choose from each
            frame's size.
        every: Detect every k-th frame (>= 1), or None to choose from the tiles used.
    """

    def __init__(
        self, detector: TilingDetector, tiles: int | None = None, every: int | None = None
    ) -> None:
        self.detector = detector
        self.tiles = tiles
        self.every = every
        self._size: tuple[int, int] | None = None
        self._skip = 0
        self._since_probe = 1 << 30  # frames since a probe: the first frame is probed
        self._small = False  # the last probe found a small face: search with tiles
        self._probe: tuple[int, int] | None = None  # this frame size's (tiles, interval)

    def plan(self, width: int, height: int) -> tuple[int, int]:
        """(tiles, every) for a frame of this size."""
        tiles = auto_tiles(width, height) if self.tiles is None else self.tiles
        return tiles, auto_every(tiles) if self.every is None else self.every

    def _probe_plan(self, width: int, height: int) -> tuple[int, int] | None:
        """(tiles, frames between probes) for frames of this size; None: no probes."""
        if self.tiles is not None or auto_tiles(width, height) > 1:
            return None
        tiles = probe_tiles(width, height)
        return (tiles, probe_every(width, height, tiles)) if tiles > 1 else None

    def detect(self, frame: Frame) -> FaceBoxes | None:
        """This frame's faces, or None when it is not searched (the tracker carries the boxes).

        A frame of a new size (a stream that changed resolution) is always searched.
        """
        h, w = frame.image.shape[:2]
        if self._skip > 0 and self._size == (w, h):
            self._skip -= 1
            return None
        if self._size != (w, h):
            self._since_probe, self._small = 1 << 30, False
            self._probe = self._probe_plan(w, h)
        tiles, every = self.plan(w, h)
        plan = self._probe
        probe = plan is not None and (self._small or self._since_probe >= plan[1])
        if plan is not None and probe:
            tiles = plan[0]
            every = auto_every(tiles) if self.every is None else self.every
        self._size, self._skip = (w, h), every - 1
        boxes = self.detector.detect(frame, tiles)
        if probe:  # a probe starts the count again; it covers ``every`` frames
            self._since_probe, self._small = every, has_small_face(boxes, w, h)
        else:
            self._since_probe += every
        return boxes
