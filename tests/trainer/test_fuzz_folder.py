"""Training-data readers, fuzzed: image-folder trees, class names and the label CSVs.

An image-folder dataset reads folder listings and image files (no CSV); the FERPlus/FER2013
datasets read ``label.csv`` and ``fer2013_7class.csv``. On arbitrary input each reader returns
consistent labels or raises one ``ConfigError``/``SourceError`` line, nothing else.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fer_live.trainer.data.cache import decode_gray
from fer_live.trainer.data.ferplus import (
    FER2013_LABELS,
    VOTE_COLUMNS,
    read_fer2013,
    read_ferplus,
    read_votes,
)
from fer_live.trainer.data.folder import read_image_folder
from tests.fuzzing import mutations, refuses_cleanly

FUZZ = settings(
    max_examples=150,
    deadline=timedelta(milliseconds=1500),
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

VOTES_CSV = (
    b'fer0028638.png,"(0, 0, 48, 48)",4,0,0,0,1,0,0,4,1,0\n'
    b'fer0028639.png,"(0, 0, 48, 48)",1,0,0,1,0,2,0,6,0,0\n'
    b'fer0028640.png,"(0, 0, 48, 48)",7,0,0,0,2,0,0,1,0,0\n'
)
FER2013_CSV = (
    b"image,usage,emotion,emotion_name\n"
    b"fer0000000.png,Training,0,angry\n"
    b"fer0000001.png,PublicTest,3,happy\n"
    b"fer0000002.png,PrivateTest,6,neutral\n"
)
FOLDER_NAMES = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="/\\\x00"),
    min_size=1,
    max_size=12,
).filter(lambda name: name not in (".", ".."))


# --- image-folder trees ------------------------------------------------------------------------


@FUZZ
@given(
    entries=st.dictionaries(
        FOLDER_NAMES,
        st.sampled_from(["images", "empty", "file", "other_files", "image_named_dir"]),
        max_size=5,
    ),
    classes=st.none() | st.lists(st.text(max_size=8), max_size=4).map(tuple),
)
@example(entries={"a": "images"}, classes=("..",))
@example(entries={"a": "images"}, classes=("a", "a"))
@example(entries={"a": "images"}, classes=("",))
@example(entries={"a": "images"}, classes=("a/../a",))
@example(entries={"a": "images"}, classes=("\x00",))
def test_image_folder_from_arbitrary_trees(
    entries: dict[str, str], classes: tuple[str, ...] | None
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, kind in entries.items():
            _make_entry(root / name, kind)
        items = refuses_cleanly(read_image_folder, root, classes)
        if items is not None:
            assert len(set(items.classes)) == len(items.classes)
            assert all(0 <= label < len(items.classes) for label in items.labels.tolist())
            assert all(p.is_file() and p.parent.parent == root for p in items.paths)


def _make_entry(path: Path, kind: str) -> None:
    try:
        if kind == "file":
            path.write_bytes(b"not a folder")
            return
        path.mkdir()
        if kind == "images":
            (path / "x.png").write_bytes(b"png bytes")
            (path / "y.JPG").write_bytes(b"jpg bytes")
        elif kind == "other_files":
            (path / "notes.txt").write_text("no images")
        elif kind == "image_named_dir":
            (path / "z.png").mkdir()
    except OSError:  # a name this filesystem refuses (too long in bytes, case clash)
        pass


def test_missing_or_unreadable_root_is_a_config_error(tmp_path: Path) -> None:
    assert refuses_cleanly(read_image_folder, tmp_path / "missing") is None
    (tmp_path / "file").write_text("x")
    assert refuses_cleanly(read_image_folder, tmp_path / "file") is None


def _decode_or_refuse(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "face.png"
        path.write_bytes(data)
        image = refuses_cleanly(decode_gray, path, 48)
        if image is not None:
            assert image.shape == (48, 48) and image.dtype == np.uint8


_, PNG = cv2.imencode(".png", np.arange(48 * 48, dtype=np.uint8).reshape(48, 48))


@settings(FUZZ, max_examples=80)
@given(st.binary(max_size=200) | mutations(PNG.tobytes()))
def test_undecodable_images_are_source_errors(data: bytes) -> None:
    _decode_or_refuse(data)


# --- FERPlus label.csv and FER2013 table --------------------------------------------------------


@FUZZ
@given(st.binary(max_size=400) | mutations(VOTES_CSV) | st.text(max_size=300).map(str.encode))
@example(b"a,b," + b"x" * 200_000 + b"\n")
@example(b'a,"(0,0,1,1)",nan,0,0,0,0,0,0,0,0,0\n')
@example(b'a,"(0,0,1,1)",-3,0,0,0,0,0,0,0,0,0\n')
@example(b"\xff\xfe\x00a")
def test_ferplus_label_csv_from_arbitrary_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        split = Path(tmp) / "FER2013Valid"
        split.mkdir()
        (split / "label.csv").write_bytes(data)
        result = refuses_cleanly(read_votes, split / "label.csv")
        if result is not None:
            names, votes = result
            assert votes.shape == (len(names), len(VOTE_COLUMNS))
            assert np.all(np.isfinite(votes)) and np.all(votes >= 0)
        items = refuses_cleanly(read_ferplus, Path(tmp), "valid")
        if items is not None:
            assert items.soft is not None and np.all(np.isfinite(items.soft))


@FUZZ
@given(st.binary(max_size=400) | mutations(FER2013_CSV) | st.text(max_size=300).map(str.encode))
@example(b"image,usage,emotion\nx.png,Training," + b"9" * 5000 + b"\n")
@example(b"image,usage,emotion\nx.png,Training,\xc2\xb2\n")
@example(b"usage,emotion\n")
def test_fer2013_table_from_arbitrary_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "fer2013_7class.csv").write_bytes(data)
        for split in ("train", "public", "private"):
            items = refuses_cleanly(read_fer2013, Path(tmp), split)
            if items is not None:
                assert all(0 <= label < len(FER2013_LABELS) for label in items.labels.tolist())


@pytest.mark.parametrize("split", ["train", "public", "private"])
def test_valid_fer2013_table_still_reads(tmp_path: Path, split: str) -> None:
    (tmp_path / "fer2013_7class.csv").write_bytes(FER2013_CSV)
    items = read_fer2013(tmp_path, split)
    assert len(items) == 1 and items.classes == FER2013_LABELS
