"""A job's record: an input counts as done only when its files match its manifest."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fer_live.jobs.state import (
    DONE,
    FAILED,
    MANIFEST,
    InputResult,
    file_digest,
    input_id,
    load_job,
    verify_done,
    write_job,
)


@pytest.fixture()
def finished(tmp_path: Path) -> tuple[Path, Path]:
    """An input file and its finished folder, as a worker leaves them."""
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"video")
    folder = tmp_path / "out" / "clip"
    folder.mkdir(parents=True)
    (folder / "clip.jsonl").write_text('{"frame": 0}\n{"frame": 1}\n')
    files = {"clip.jsonl": file_digest(folder / "clip.jsonl")}
    result = InputResult("clip", str(source), DONE, frames=2, faces=2, tracks=1, files=files,
                         fingerprint="f1", input_id=input_id(str(source)))  # fmt: skip
    (folder / MANIFEST).write_text(json.dumps(result.to_json()))
    return source, folder


def test_a_whole_input_is_done(finished: tuple[Path, Path]) -> None:
    source, folder = finished
    result, why = verify_done(folder, "f1", str(source))
    assert result is not None and result.frames == 2 and why == ""


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda s, f: (f / "clip.jsonl").write_text('{"frame": 0}\n'), "another size"),
        # same size, other bytes: only the digest tells
        (lambda s, f: (f / "clip.jsonl").write_text('{"frame": 0}\n{"frame": 2}\n'), "digest"),
        (lambda s, f: (f / "clip.jsonl").unlink(), "missing"),
        (lambda s, f: (f / MANIFEST).unlink(), "no manifest"),
        (lambda s, f: (f / MANIFEST).write_text("{not json"), "no manifest"),
        (lambda s, f: os.utime(s, ns=(1, 1)), "input file changed"),
    ],
)
def test_an_input_whose_outputs_do_not_match_is_not_done(
    finished: tuple[Path, Path], change, why: str
) -> None:
    source, folder = finished
    change(source, folder)
    result, reason = verify_done(folder, "f1", str(source))
    assert result is None and why in reason


def test_other_settings_redo_an_input(finished: tuple[Path, Path]) -> None:
    source, folder = finished
    assert verify_done(folder, "f2", str(source)) == (None, "made with other settings")


def test_the_job_files_round_trip_and_leave_no_temporary_file(tmp_path: Path) -> None:
    results = [
        ("/a.mp4", InputResult("a", "/a.mp4", DONE, frames=3, fps=12.345)),
        ("/b.mp4", InputResult("b", "/b.mp4", FAILED, error="cannot open video '/b.mp4'")),
    ]
    write_job(tmp_path, results, {"model": None})
    rows = load_job(tmp_path)
    assert rows["/b.mp4"]["status"] == FAILED and rows["/b.mp4"]["error"].startswith("cannot")
    assert rows["/a.mp4"]["fps"] == 12.35
    assert (tmp_path / "job.csv").read_text().splitlines()[0].startswith("name,source,status")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.csv", "job.json"]


def test_a_new_job_removes_the_temporary_files_a_killed_job_left(tmp_path: Path) -> None:
    """A job killed with -9 while rewriting job.json leaves ``.job.json.<pid>.tmp``; the next
    job (holding the lock) removes it and nothing else."""
    from fer_live.jobs.driver import job_folder

    out = tmp_path / "job"
    out.mkdir()
    stale = [out / ".job.json.14788.tmp", out / ".summary.csv.3.tmp"]
    kept = [out / "job.json", out / ".notes.tmp", out / "my.tmp"]
    for path in [*stale, *kept]:
        path.write_text("x")
    with job_folder(out):
        pass
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)
