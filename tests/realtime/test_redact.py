"""Credentials in source URLs never reach the screen, logs, records or bench results (issue 18)."""

from __future__ import annotations

import csv
import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fer_live.capture.redact import mask_url
from fer_live.capture.sources import open_source
from fer_live.commands.app import main
from fer_live.errors import SourceError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rtsp://admin:pw@10.0.0.5:554/live", "rtsp://admin:***@10.0.0.5:554/live"),
        ("https://TOKEN123@host/x.m3u8", "https://***@host/x.m3u8"),
        ("http://h/x.ts?token=abc&fps=25", "http://h/x.ts?token=***&fps=25"),
        (
            "http://h/x?api_key=1;Signature=2&X-Amz-Credential=3",
            "http://h/x?api_key=***;Signature=***&X-Amz-Credential=***",
        ),
        (
            "http://h/x?password=p&auth=a&secret=s&sig=g",
            "http://h/x?password=***&auth=***&secret=***&sig=***",
        ),
        ("https://h/cb#access_token=t&state=1", "https://h/cb#access_token=***&state=1"),
        ("rtsp://u:p@h/a?key=k#frag", "rtsp://u:***@h/a?key=***#frag"),
        (
            "-s rtsp://u:p@h/a --source=http://h/?token=t -o out.mp4",
            "-s rtsp://u:***@h/a --source=http://h/?token=*** -o out.mp4",
        ),
        ("stream 'http://a:b@c/d' lost", "stream 'http://a:***@c/d' lost"),
        ("http://host/clip.mp4?start=3", "http://host/clip.mp4?start=3"),
        ("http://h/p?key", "http://h/p?key"),
        ("clip.mp4", "clip.mp4"),
        ("user:pw@host", "user:pw@host"),
    ],
)
def test_mask_url(text: str, expected: str) -> None:
    assert mask_url(text) == expected


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served_ts(tmp_path: Path) -> Iterator[str]:
    """``http://user:secret@127.0.0.1:PORT/clip.ts?token=hunter2``: a real served MPEG-TS."""
    import av

    folder = tmp_path / "www"
    folder.mkdir()
    with av.open(str(folder / "clip.ts"), "w") as out:
        stream = out.add_stream("mpeg2video", rate=25)
        stream.width, stream.height = 64, 48
        for index in range(12):
            frame = av.VideoFrame(64, 48, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([index * 10]) * plane.buffer_size)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://user:secret@127.0.0.1:{server.server_address[1]}/clip.ts?token=hunter2"
    server.shutdown()
    server.server_close()


def _no_secret(text: str) -> bool:
    return "secret" not in text and "hunter2" not in text


def test_records_and_screen_show_the_masked_url(
    served_ts: str, tiny_model_path: Path, tmp_path: Path, capsys
) -> None:
    # when a URL with a password and a token runs with every output
    jsonl, table = tmp_path / "out.jsonl", tmp_path / "out.csv"
    args = ["-s", served_ts, "-m", str(tiny_model_path), "--headless"]
    rc = main([*args, "--jsonl", str(jsonl), "--csv", str(table), "--verbose"])
    captured = capsys.readouterr()
    # then: the frames are read and the name is masked on screen and in files
    assert rc == 0 and "12 frames" in captured.err
    assert _no_secret(captured.out + captured.err)
    assert _no_secret(jsonl.read_text()) and _no_secret(table.read_text())
    rows = list(csv.DictReader(table.read_text().splitlines()))
    assert all(row["source"] == mask_url(served_ts) for row in rows)


def test_frames_carry_the_masked_name(served_ts: str) -> None:
    with open_source(served_ts) as source:
        frames = list(source)
    assert len(frames) == 12 and {f.source_id for f in frames} == {mask_url(served_ts)}
    assert source.source_id == mask_url(served_ts) and not source.live


def test_error_message_is_masked(served_ts: str) -> None:
    missing = served_ts.replace("clip.ts", "missing.ts")
    with pytest.raises(SourceError) as caught, open_source(missing):
        pass
    assert _no_secret(str(caught.value)) and "404" in str(caught.value)
    assert str(caught.value).startswith(f"cannot open stream '{mask_url(missing)}'")


def test_bench_result_is_masked(served_ts: str, tiny_model_path: Path, tmp_path: Path, capsys):
    # when
    results = tmp_path / "results"
    args = ["bench", "-s", served_ts, "--max-frames", "6", "-m", str(tiny_model_path)]
    rc = main([*args, "--results-dir", str(results)])
    captured = capsys.readouterr()
    # then: source, config and command are recorded, masked
    (path,) = results.glob("*.json")
    result = json.loads(path.read_text())
    assert rc == 0 and _no_secret(path.read_text()) and _no_secret(captured.out + captured.err)
    assert result["source"] == mask_url(served_ts)
    assert result["config"]["capture"]["source"] == mask_url(served_ts)
    assert mask_url(served_ts) in result["command"]
