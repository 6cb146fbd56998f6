"""A batch job's INPUTS: folders, globs, lists, duplicates, missing paths and stable names."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_live.errors import ConfigError
from fer_live.jobs.inputs import expand_inputs, input_key


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_a_folder_gives_its_videos_sorted_and_skips_other_files(tmp_path: Path) -> None:
    # given a folder with videos at two depths and files that are not videos
    for name in ("b.mp4", "a.MOV", "sub/c.mkv", "notes.txt", "cover.jpg"):
        _touch(tmp_path / "in" / name)
    # when it is expanded
    items = expand_inputs([str(tmp_path / "in")])
    # then only the videos, in path order, each named after its stem
    assert [Path(i.source).name for i in items] == ["a.MOV", "b.mp4", "c.mkv"]
    assert [i.name for i in items] == ["a", "b", "c"]


def test_same_stem_in_two_folders_gets_two_names_and_a_repeat_is_kept_once(
    tmp_path: Path,
) -> None:
    # given two clip.mp4 in different folders, one given twice (once through a symlink)
    one, two = _touch(tmp_path / "x" / "clip.mp4"), _touch(tmp_path / "y" / "clip.mp4")
    (tmp_path / "link.mp4").symlink_to(one)
    # when expanded
    items = expand_inputs([str(one), str(two), str(one), str(tmp_path / "link.mp4")])
    # then two inputs with different names that keep the stem
    assert [i.source for i in items] == [str(one), str(two)]
    assert len({i.name for i in items}) == 2
    assert all(i.name.startswith("clip-") for i in items)
    # and the names do not depend on the order the inputs came in
    again = expand_inputs([str(two), str(one)])
    assert {i.key: i.name for i in again} == {i.key: i.name for i in items}


def test_names_given_by_an_earlier_run_are_kept(tmp_path: Path) -> None:
    clip = _touch(tmp_path / "clip.mp4")
    items = expand_inputs([str(clip)], {input_key(str(clip)): "clip-earlier"})
    assert items[0].name == "clip-earlier"


def test_lists_read_relative_paths_from_their_folder_and_keep_urls(tmp_path: Path) -> None:
    # given a text list and a CSV list with a header, relative paths and a URL
    _touch(tmp_path / "lists" / "v" / "a.mp4")
    (tmp_path / "lists" / "in.txt").write_text("# study 1\nv/a.mp4\n\nrtsp://cam/live\n")
    (tmp_path / "lists" / "in.csv").write_text("id,path\n1,v/b.mp4\n")
    # when expanded
    items = expand_inputs([str(tmp_path / "lists" / "in.txt"), str(tmp_path / "lists" / "in.csv")])
    # then the entries in order, paths from the list's folder (b.mp4 is missing: still an input)
    assert [i.source for i in items] == [
        str(tmp_path / "lists" / "v" / "a.mp4"),
        "rtsp://cam/live",
        str(tmp_path / "lists" / "v" / "b.mp4"),
    ]
    assert items[1].name == "live" and items[1].key == "rtsp://cam/live"


def test_a_glob_expands_and_a_missing_file_stays_an_input(tmp_path: Path) -> None:
    _touch(tmp_path / "g" / "1.mp4")
    _touch(tmp_path / "g" / "2.mp4")
    items = expand_inputs([str(tmp_path / "g" / "*.mp4"), str(tmp_path / "gone.mp4")])
    assert [Path(i.source).name for i in items] == ["1.mp4", "2.mp4", "gone.mp4"]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda root: [], "no inputs"),
        (lambda root: [str(root)], "no videos in folder"),
        (lambda root: [str(root / "*.mp4")], "no videos match"),
        (lambda root: [""], "empty input"),
    ],
)
def test_inputs_that_give_nothing_are_refused(tmp_path: Path, make, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        expand_inputs(make(tmp_path))


def test_names_are_safe_file_names_and_avoid_the_jobs_own_files(tmp_path: Path) -> None:
    odd = _touch(tmp_path / "a b:c?.mp4")
    job = _touch(tmp_path / "summary.csv.mp4")
    items = expand_inputs([str(odd), str(job)])
    assert items[0].name == "a_b_c_"
    assert items[1].name.startswith("summary.csv-")
