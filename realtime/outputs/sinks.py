"""Where results go: annotated video or images, JSON Lines, CSV, a window, or nowhere.

Every sink is a context manager with ``write(result, image)``; ``image`` is the rendered overlay
(None when no sink needs one, see ``needs_image``). Record sinks flush after every frame and the
video sink finalizes its container in ``close()``, so a Ctrl-C or a kill loses at most the
frame being written. Files are written under a temporary name and renamed into place on
``close()`` (``fer_live.outputs.staged``), so an output path never holds a half-written file; a
run that fails keeps them under partial names instead (``sink_base.committed_together``).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from fer_live.errors import ConfigError, FerLiveError
from fer_live.outputs.base import NullSink, Sink, SinkSettings
from fer_live.outputs.records import CsvSink, JsonlSink, face_records
from fer_live.outputs.staged import StagedFile, describe_os_error
from fer_live.types import FrameResult

logger = logging.getLogger(__name__)

# The record sinks and the base live in their own modules; every sink is importable from here.
__all__ = [
    "CsvSink",
    "ImageDirSink",
    "ImageFileSink",
    "JsonlSink",
    "NullSink",
    "Sink",
    "VideoFileSink",
    "WindowSink",
    "annotated_sink",
    "face_records",
    "output_kind",
]

# Containers VideoFileSink writes (checked with PyAV 18: .webm with VP9, the rest with H.264).
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".m4v", ".webm")
# ``-o`` with one of these writes one annotated image (the source must be one still image).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def output_kind(path: Path) -> str:
    """What ``-o PATH`` writes: ``video``, ``image`` (one still) or ``folder`` (of images).

    An existing folder or a name without a suffix is a folder; anything else is refused, so a
    typo such as ``out.mp``, ``.mp4`` or ``out.`` never silently becomes a folder of JPEGs.

    Raises:
        ConfigError: The suffix is neither a video nor an image one (the message lists both), or
            the name is a typo.
    """
    suffix = path.suffix.lower()
    if path.is_dir():
        return "folder"
    _check_not_a_typo(path)
    if not suffix:
        return "folder"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    raise ConfigError(
        f"--output '{path}': unknown suffix {path.suffix!r}; use a video "
        f"({', '.join(VIDEO_SUFFIXES)}), an image ({', '.join(IMAGE_SUFFIXES)}) for a single "
        "image source, or a folder (an existing one, or a name without a suffix)"
    )


def _check_not_a_typo(path: Path) -> None:
    """``-o .mp4`` or ``-o out.`` (Path sees no suffix in either) is a typo, not a hidden folder.

    Raises:
        ConfigError: The name is only a suffix, or ends with a dot.
    """
    if path.name.lower() in VIDEO_SUFFIXES + IMAGE_SUFFIXES:
        raise ConfigError(
            f"--output '{path}' is a suffix without a name: put a name before it (out{path.name})"
        )
    if path.name.endswith("."):
        raise ConfigError(
            f"--output '{path}' ends with a dot: add a suffix (.mp4) for a video, "
            "or drop the dot for a folder of images"
        )


class VideoFileSink(Sink):
    """Annotated video, encoded on its own thread behind a bounded queue.

    The container opens on the first frame (its size becomes the video size; later frames of
    another size are resized) and is finalized in ``close()``, so the file plays after Ctrl-C.

    Args:
        path: Output file (``.mp4``, ``.mkv``, ...).
        fps: Frame rate to write (the source's).
        queue_size: Frames that may wait for the encoder before ``write`` blocks.
        codec: Preferred encoder (None: by suffix, H.264 or VP9 for ``.webm``); falls back to
            ``mpeg4`` (VP8 for ``.webm``) when it is unavailable.
        timed: Stamp frames with their capture time (ms) instead of a constant rate, so a
            live source that drops frames still plays back in real time.
        audio: The video file the frames come from: its sound goes into the output
            (``fer_live.outputs.audio_mux``), and the frames keep its times (except in AVI, which
            stores one constant rate), so the sound stays in sync on variable-rate phone clips.
        hud: Draw the FPS and latency figures into this output too.
    """

    needs_image = True

    def __init__(
        self,
        path: Path,
        fps: float,
        queue_size: int = 8,
        codec: str | None = None,
        timed: bool = False,
        audio: Path | None = None,
        hud: bool = False,
    ) -> None:
        self.path = Path(path)
        self._staged = StagedFile(self.path)
        self.fps = fps if fps and fps > 0 else 30.0
        suffix = self.path.suffix.lower()
        self.codec, self._fallback = _CODECS.get(suffix, _CODECS[""])
        self.codec = codec or self.codec
        self.audio = audio
        self.timed = timed or (audio is not None and suffix != ".avi")
        self.hud = hud
        self.frames_written = 0
        self._last_t_s: float | None = None
        self._queue: queue.Queue[tuple[np.ndarray, float | None] | None] = queue.Queue(queue_size)
        self._error: BaseException | None = None
        self._broken = False  # the encoder failed: the container is not worth keeping
        _open_text(self._staged.temp, self.path).close()  # fail now, not on the encoder thread
        self._thread: threading.Thread | None = threading.Thread(
            target=self._encode_loop, name="fer-live-video", daemon=True
        )
        self._thread.start()

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        if image is None:
            raise ValueError("VideoFileSink needs the rendered image")
        self._raise_encoder_error()
        if self._thread is None:
            return
        self._last_t_s = result.frame.t_s
        self._queue.put((image, result.frame.t_s))

    def finish(self) -> None:
        self._stop_encoder()
        self._raise_encoder_error()

    def commit(self) -> None:
        if self._playable():
            self._add_audio()
            self._staged.commit()
        else:
            self._staged.discard()  # no frame, or a broken container: leave no file

    def keep_partial(self) -> list[Path]:
        self._stop_encoder()
        kept = self._staged.keep_partial() if self._playable() else None
        self._staged.discard()
        return [] if kept is None else [kept]

    def abort(self) -> None:
        self._stop_encoder()
        self._staged.discard()

    def _playable(self) -> bool:
        return self.frames_written > 0 and not self._broken

    def _stop_encoder(self) -> None:
        """Let the encoder finish the queued frames and finalize the container."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _add_audio(self) -> None:
        """The source's sound, up to the end of the last written frame (none on failure)."""
        if self.audio is None:
            return
        from fer_live.outputs.audio_mux import add_source_audio

        frame_s = 1.0 / self.fps
        last_s = self._last_t_s
        end_s = (self.frames_written - 1) * frame_s if last_s is None else last_s
        add_source_audio(self.audio, self._staged.temp, end_s + frame_s)

    def _raise_encoder_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            reason = describe_os_error(error, self._staged.temp, self.path)
            raise FerLiveError(f"cannot write video '{self.path}': {reason}") from None

    def _encode_loop(self) -> None:
        import av

        container = stream = None
        try:
            last_pts = -1
            while (item := self._queue.get()) is not None:
                image, t_s = item
                if container is None or stream is None:
                    container = av.open(str(self._staged.temp), mode="w")
                    stream = self._add_stream(container, image.shape[1], image.shape[0])
                frame = av.VideoFrame.from_ndarray(_fit(image, stream), format="bgr24")
                pts = round(t_s * 1000) if self.timed and t_s is not None else self.frames_written
                frame.pts = last_pts = max(pts, last_pts + 1)
                container.mux(stream.encode(frame))
                self.frames_written += 1
            if container is not None and stream is not None:
                container.mux(stream.encode(None))
        except Exception as exc:  # reported to the caller on the next write/close
            self._error, self._broken = exc, True
            _drain(self._queue)
        finally:
            if container is not None:
                try:
                    container.close()
                except Exception as exc:  # e.g. disk full while writing the index
                    self._error, self._broken = self._error or exc, True

    def _add_stream(self, container: Any, width: int, height: int) -> Any:
        import av

        rate = Fraction(self.fps).limit_denominator(1001)
        try:
            stream = container.add_stream(self.codec, rate=rate)
        except (av.FFmpegError, ValueError):
            logger.warning("encoder %s unavailable; using %s", self.codec, self._fallback)
            stream = container.add_stream(self._fallback, rate=rate)
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000) if self.timed else 1 / rate
        if stream.codec_context.name == "libx264":
            # superfast: ~2.4 ms of one core per 640x360 frame (veryfast ~3.6, ultrafast ~1.3
            # but 2x the file size), measured on the 2-core dev machine.
            stream.codec_context.options = {"preset": "superfast", "crf": "23"}
        elif stream.codec_context.name.startswith("libvpx"):
            # libvpx's default "good" deadline encodes a few frames per second; realtime keeps up
            stream.codec_context.options = {"deadline": "realtime", "cpu-used": "8", "crf": "32"}
            stream.codec_context.bit_rate = 0
        return stream


# suffix -> (encoder, fallback encoder); "" is every other video suffix
_CODECS = {"": ("libx264", "mpeg4"), ".webm": ("libvpx-vp9", "libvpx")}


class ImageFileSink(Sink):
    """One annotated image (``-o annotated.jpg`` when the source is one still image).

    Args:
        path: The image file.
        hud: Draw the FPS and latency figures into it too.
    """

    needs_image = True

    def __init__(self, path: Path, hud: bool = False) -> None:
        self.path = Path(path)
        self.hud = hud
        self._staged = StagedFile(self.path)
        _open_text(self._staged.temp, self.path).close()  # fail now: folder missing or read-only
        self._written = False

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        if image is None:
            raise ValueError("ImageFileSink needs the rendered image")
        if self._written:
            raise FerLiveError(f"--output '{self.path}' is one image but the source has more")
        if not cv2.imwrite(str(self._staged.temp), image):
            raise FerLiveError(f"cannot write image '{self.path}'")
        self._written = True

    def commit(self) -> None:
        if self._written:
            self._staged.commit()
        else:
            self._staged.discard()

    def keep_partial(self) -> list[Path]:
        kept = self._staged.keep_partial() if self._written else None
        self._staged.discard()
        return [] if kept is None else [kept]

    def abort(self) -> None:
        self._staged.discard()


class ImageDirSink(Sink):
    """Annotated images into a folder, one file per frame (for image sources).

    Args:
        folder: Created if missing.
        hud: Draw the FPS and latency figures into the images too.
    """

    needs_image = True

    def __init__(self, folder: Path, hud: bool = False) -> None:
        self.folder = Path(folder)
        self.hud = hud
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FerLiveError(f"cannot create output folder '{folder}': {exc.strerror}") from None

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        if image is None:
            raise ValueError("ImageDirSink needs the rendered image")
        stem = Path(result.frame.source_id).stem or "frame"
        path = self.folder / f"{result.frame.index:06d}_{stem}.jpg"
        if not cv2.imwrite(str(path), image):
            raise FerLiveError(f"cannot write image '{path}'")


class WindowSink(Sink):
    """An OpenCV window, with the FPS and latency figures; ``q``, Esc or the window's close
    button set ``stop_requested``.

    Args:
        title: Window title.
        hold: Still images: each stays up until a key is pressed (``q``/Esc stop, any other
            key shows the next) or the window is closed, instead of flashing for 1 ms.
        fps: Show a video file at its own frame rate (None: as fast as frames come, for
            cameras and streams, which arrive in real time anyway).
        clock: Seconds, monotonic (injectable for tests).
    """

    needs_image = True
    hud = True

    def __init__(
        self,
        title: str = "fer-live",
        hold: bool = False,
        fps: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.title = title
        self.hold = hold
        self._interval_s = 1.0 / fps if fps and fps > 0 else 0.0
        self._clock = clock
        self._due: float | None = None
        self._open = False

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        if image is None:
            raise ValueError("WindowSink needs the rendered image")
        cv2.imshow(self.title, image)
        self._open = True
        key = self._wait_for_key() if self.hold else cv2.waitKey(self._delay_ms()) & 0xFF
        if key in (ord("q"), 27) or self._closed():
            self.stop_requested = True

    def _delay_ms(self) -> int:
        """Milliseconds until the next frame is due (at least 1: waitKey(0) waits forever)."""
        if not self._interval_s:
            return 1
        now = self._clock()
        if self._due is None or now - self._due > self._interval_s:
            self._due = now  # first frame, or decoding fell behind: do not race to catch up
        self._due += self._interval_s
        return max(1, round((self._due - now) * 1000.0))

    def _wait_for_key(self) -> int:
        """Poll (so the close button is noticed) until a key comes or the window is closed."""
        while not self._closed():
            key = cv2.waitKey(100)
            if key != -1:
                return key & 0xFF
        return -1

    def _closed(self) -> bool:
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:  # Qt: the window manager destroyed it ("NULL guiReceiver")
            return True

    def finish(self) -> None:
        if self._open:
            self._open = False
            with contextlib.suppress(cv2.error):  # already closed with its close button
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)  # let the GUI loop actually remove it


def _open_text(path: Path, shown: Path) -> IO[str]:
    """Open ``path`` for writing; an error names ``shown``, the path the user gave."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise FerLiveError(f"cannot write '{shown}': {exc.strerror}") from None


def _fit(image: np.ndarray, stream: Any) -> np.ndarray:
    """Resize or pad ``image`` to the stream's (even) size."""
    h, w = image.shape[:2]
    if (w, h) == (stream.width, stream.height):
        return image
    if (w + w % 2, h + h % 2) == (stream.width, stream.height):
        return cv2.copyMakeBorder(image, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
    return cv2.resize(image, (stream.width, stream.height), interpolation=cv2.INTER_AREA)


def _drain(q: queue.Queue[tuple[np.ndarray, float | None] | None]) -> None:
    """Keep taking items so producers never block on a dead encoder."""
    while q.get() is not None:
        pass


def annotated_sink(path: Path, run: SinkSettings) -> Sink:
    """``-o``: an annotated video, one annotated image (for a one-image source) or a folder of
    annotated images, as ``output_kind`` reads the path.

    Raises:
        ConfigError: ``path`` names one image but the source is not one image (nothing made).
    """
    kind = output_kind(path)
    if kind == "image" and not run.one_image:
        raise ConfigError(
            f"--output '{path}' is one image, but the source is not a single image: "
            "use a video suffix (.mp4) or a folder"
        )
    if kind == "video":
        return VideoFileSink(path, run.fps or 30.0, timed=run.live, audio=run.audio, hud=run.hud)
    return ImageFileSink(path, run.hud) if kind == "image" else ImageDirSink(path, run.hud)
