"""A detector and an output format are each one table entry plus a class: registered in one
place (here, one ``monkeypatch.setitem`` each), both run through the ``fer-live`` command."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from fer_live.commands.app import main
from fer_live.detect.table import DETECTORS, DetectorEntry
from fer_live.outputs.base import Sink, SinkSettings
from fer_live.outputs.table import OUTPUT_FORMATS, OutputFormat
from fer_live.types import FaceBoxes, Frame, FrameResult

FRAMES = 12
BOX = (40.0, 30.0, 104.0, 110.0)


class FixedBoxDetector:
    """Finds one face at ``BOX`` in every frame; remembers how it was built and called."""

    built: list[tuple[float, int, bool]] = []
    tiles: list[int | None] = []

    def __init__(self, *, min_score: float, max_faces: int, stills: bool) -> None:
        FixedBoxDetector.built.append((min_score, max_faces, stills))

    def detect(self, frame: Frame, tiles: int | None = None) -> FaceBoxes:
        FixedBoxDetector.tiles.append(tiles)
        return FaceBoxes(np.array([BOX], np.float32), np.array([0.99], np.float32))

    def close(self) -> None:
        FixedBoxDetector.built.append((-1.0, -1, False))  # closed


class TallySink(Sink):
    """One line per frame: its index, its face count and the first label of the run."""

    def __init__(self, path: Path, run: SinkSettings) -> None:
        self.path, self.label, self.lines = path, run.labels[0], []

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        self.lines.append(f"{result.frame.index} {len(result.tracks)} {self.label}\n")

    def commit(self) -> None:
        self.path.write_text("".join(self.lines))


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A 12-frame H.264 clip of noise (no real face: the dummy detector finds one anyway)."""
    path = tmp_path / "noise.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 128, "yuv420p"
        for _ in range(FRAMES):
            image = rng.integers(0, 255, (128, 160, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
    return path


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    FixedBoxDetector.built, FixedBoxDetector.tiles = [], []
    monkeypatch.setitem(DETECTORS, "fixed", DetectorEntry("fixed", FixedBoxDetector, "one box"))
    tally = OutputFormat("tally", ("--tally",), "Faces per frame, as text.", TallySink)
    monkeypatch.setitem(OUTPUT_FORMATS, "tally", tally)


def test_a_registered_detector_and_output_format_run_through_the_cli(
    registered: None, clip: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    # given a clip, and the two entries registered above
    out, jsonl = tmp_path / "faces.txt", tmp_path / "faces.jsonl"
    args = ["-s", str(clip), "-m", str(tiny_model_path), "--headless", "--min-score", "0.7"]
    # when
    rc = main([*args, "--max-faces", "3", "--detector", "fixed", "--tally", str(out),
               "--jsonl", str(jsonl)])  # fmt: skip
    # then: the detector was built from the flags and closed, and searched the frames the plan
    # chose (whole: a small frame); the new output has a line per frame, beside the records
    assert rc == 0
    assert FixedBoxDetector.built == [(0.7, 3, False), (-1.0, -1, False)]
    assert FixedBoxDetector.tiles and set(FixedBoxDetector.tiles) == {1}
    lines = out.read_text().splitlines()
    assert (
        len(lines) == FRAMES
        and lines[0] == "0 1 neutral"
        and lines[-1] == f"{FRAMES - 1} 1 neutral"
    )
    assert len(jsonl.read_text().splitlines()) == FRAMES


def test_registered_entries_are_in_the_help_and_their_checks(
    registered: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # when / then: the new flag is listed, and it takes part in the different-files check
    assert main(["--help"]) == 0
    assert "--tally" in capsys.readouterr().out
    same = tmp_path / "x.txt"
    assert main(["-s", "clip.mp4", "--headless", "--tally", str(same), "--csv", str(same)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --csv and --tally must be different files, got '{same}'\n"
    # and an unregistered detector is refused with the table's names
    assert main(["-s", "clip.mp4", "--headless", "--detector", "other"]) == 2
    assert "--detector must be one of short, full, fixed, got 'other'" in capsys.readouterr().err
