"""PyAV decoding for URLs, and the upright orientation of decoded frames.

``AvCapture`` reads a URL (http, https, rtsp, rtmp, hls, ...) with PyAV rather than OpenCV so
that the reader can tell a file behind a URL (known length: read once) from a live stream
(retried when it stops), tell a clean end of stream from a read error, and keep each frame's own
size when the resolution changes mid-stream (OpenCV rescales every frame to the first one's
size). ``upright_bgr`` turns frames that carry rotation metadata (phone videos) upright.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

from fer_live.capture.redact import mask_url

logger = logging.getLogger(__name__)

# cv2.rotate code for each clockwise turn that makes a frame display upright
_ROTATE_CW = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
# demuxers whose byte size is that of a playlist, not of the media (a live playlist has one too)
_PLAYLISTS = ("hls", "dash")


def clockwise_turn(frame: Any, stream: Any) -> int:
    """Degrees (0, 90, 180 or 270) to turn a decoded frame clockwise so it displays upright.

    The display matrix (stream side data that FFmpeg attaches to every decoded frame) wins; a
    container's ``rotate`` tag (clockwise degrees, any case) is the fallback.

    Args:
        frame: A decoded ``av.VideoFrame``.
        stream: Its ``av.VideoStream``.
    """
    counterclockwise = float(frame.rotation or 0)
    if counterclockwise == 0:
        tags = {key.lower(): value for key, value in stream.metadata.items()}
        tag = tags.get("rotate", "0").strip()  # Matroska writes it as ROTATE
        counterclockwise = -float(tag) if tag.lstrip("-").isdigit() else 0.0
    return int(round(-counterclockwise / 90.0)) * 90 % 360


def upright_bgr(frame: Any, stream: Any) -> np.ndarray:
    """The frame as a BGR uint8 image (H, W, 3) at its own size, turned as its metadata says."""
    image = frame.to_ndarray(format="bgr24")
    turn = clockwise_turn(frame, stream)
    return cv2.rotate(image, _ROTATE_CW[turn]) if turn else image


def is_finite(container: Any) -> bool:
    """A file behind a URL: its duration or byte size is known (a live stream knows neither)."""
    if container.duration is not None:
        return True
    # PyAV 18.1.1 gives None where earlier versions gave 0 for an unknown size.
    return container.format.name not in _PLAYLISTS and (container.size or 0) > 0


def stated_end_s(stream: Any) -> float | None:
    """Where the stream's stated duration ends, in seconds of its own timestamps (None: unknown)."""
    if stream.duration is None or stream.time_base is None:
        return None
    return float(((stream.start_time or 0) + stream.duration) * stream.time_base)


def reaches_end(last_time_s: float, end_s: float, fps: float | None) -> bool:
    """Whether a frame at ``last_time_s`` is the last of a stream ending at ``end_s``: within
    three frames of it (the last frame starts one frame before the end; pts are rounded)."""
    return last_time_s + 3.0 / (fps or 30.0) >= end_s


def open_error(exc: BaseException) -> str:
    """One masked line for a PyAV open/read error (its text repeats the full URL)."""
    text = str(getattr(exc, "strerror", None) or exc).strip() or type(exc).__name__
    return mask_url(" ".join(text.split()))


class AvCapture:
    """A URL decoded with PyAV behind the ``Capture`` interface that ``LiveSource`` reads.

    Never raises: a failed open leaves ``isOpened()`` False with the reason in ``error``; a
    failed read returns ``(False, None)`` with ``ended`` True at a clean end of stream.

    Args:
        url: The real URL (credentials included; only ever given to FFmpeg).
        open_timeout_s: Give up connecting after this long.
        read_timeout_s: Treat a stream silent for this long as stopped.

    Attributes:
        finite: The URL is a file of known length (read once, never replayed).
        ended: The last read hit the end of the stream (not an error).
        t_s: Presentation time of the last frame, from 0 and never decreasing.
    """

    def __init__(self, url: str, open_timeout_s: float = 10.0, read_timeout_s: float = 10.0):
        import av

        self.error: str | None = None
        self.finite = self.ended = False
        self.fps: float | None = None
        self.frame_count: int | None = None
        self.t_s = 0.0
        self._read_timeout_s = read_timeout_s
        self._t0: float | None = None
        self._last_time: float | None = None
        self._container: Any = None
        self._decoded: Iterator[Any] | None = None
        options = {"rtsp_transport": "tcp"} if url.lower().startswith("rtsp") else {}
        try:
            self._container = av.open(
                url, timeout=(open_timeout_s, read_timeout_s), options=options
            )
            self._stream = self._container.streams.video[0]
        except (av.FFmpegError, OSError, IndexError, UnicodeDecodeError) as exc:
            if isinstance(exc, av.ExitError):  # our timeout stopped FFmpeg's wait
                self.error = f"no answer within {open_timeout_s:g} s"
            else:
                self.error = "no video stream" if isinstance(exc, IndexError) else open_error(exc)
            self.release()
            return
        self._stream.thread_type = "AUTO"
        self.finite = is_finite(self._container)
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else None
        self.frame_count = (int(self._stream.frames) or None) if self.finite else None
        self._decoded = self._decode()

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self._container is not None

    def read(self) -> tuple[bool, np.ndarray | None]:
        """The next frame, upright and at its own size; ``(False, None)`` at the end or on error."""
        if self._decoded is None:
            return False, None
        frame = next(self._decoded, None)
        if frame is None:
            self._decoded = None
            return False, None
        if frame.time is not None:
            self._last_time = float(frame.time)
            self._t0 = frame.time if self._t0 is None else self._t0
            self.t_s = max(self.t_s, float(frame.time - self._t0))  # restarts (concatenated TS)
        return True, upright_bgr(frame, self._stream)

    def get(self, prop: int) -> float:
        """``cv2.CAP_PROP_FPS`` is the stream's frame rate; anything else is unknown (0)."""
        return float(self.fps or 0.0) if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        self._decoded = None

    def _decode(self) -> Iterator[Any]:
        """Frames until the end of the stream; after a read error, the frames still buffered in
        the decoder are flushed out first, so a stream that is cut loses none of them."""
        import av

        try:
            for packet in self._container.demux(self._stream):
                yield from _decode_packet(packet)
            self.ended = True
        except (av.FFmpegError, OSError) as exc:
            timed_out = isinstance(exc, av.ExitError)  # FFmpeg's "Immediate exit requested"
            error = f"no data for {self._read_timeout_s:g} s" if timed_out else open_error(exc)
            logger.debug("read error: %s", error)
            yield from _decode_packet(None, self._stream)
            # FFmpeg's HTTP reader calls the server's close an I/O error when it sent no
            # Content-Length, even after the last byte: a file whose frames reached its stated
            # end has ended; one cut short has not.
            if self.finite and self._reached_stated_end():
                self.ended = True
            else:
                self.error = error

    def _reached_stated_end(self) -> bool:
        end_s = stated_end_s(self._stream)
        if end_s is None or self._last_time is None:
            return False
        return reaches_end(self._last_time, end_s, self.fps)


def _decode_packet(packet: Any, stream: Any = None) -> Iterator[Any]:
    """Decode one packet (or flush ``stream``'s decoder when None); a corrupt packet is skipped,
    not fatal, as a live stream joined mid-way starts with packets that reference missing frames.
    """
    import av

    try:
        if packet is not None:
            yield from packet.decode()
            return
        for frame in stream.codec_context.decode(None):
            # flushed frames come without a time base, so their time would be NaN
            frame.time_base = frame.time_base or stream.time_base
            yield frame
    except (av.FFmpegError, ValueError) as exc:
        logger.debug("skipped an undecodable packet: %s", exc)
