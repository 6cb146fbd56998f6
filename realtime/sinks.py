"""Where results go: annotated video or images, JSON Lines, CSV, a window, or nowhere.

Every sink is a context manager with ``write(result, image)``; ``image`` is the rendered overlay
(None when no sink needs one, see ``needs_image``). Record sinks flush after every frame and the
video sink finalizes its container in ``close()``, so a Ctrl-C or a kill loses at most the
frame being written. Files are written under a temporary name and renamed into place on
``close()`` (``realtime.output_files``), so an output path never holds a half-written file.
"""

from __future__ import annotations

import csv
import json
import logging
import queue
import threading
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import cv2
import numpy as np

from realtime.config import VIDEO_SUFFIXES, OutputConfig
from realtime.errors import FerLiveError
from realtime.output_files import StagedFile, check_outputs
from realtime.types import FrameResult

logger = logging.getLogger(__name__)


class Sink:
    """Base sink: context manager; ``stop_requested`` becomes True when the user asks to quit."""

    needs_image = False
    stop_requested = False

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        """Consume one processed frame (and its overlay when ``needs_image``)."""

    def close(self) -> None:
        """Flush and release everything; safe to call twice."""

    def abort(self) -> None:
        """Release everything and leave no output behind (the run never started)."""
        self.close()

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class NullSink(Sink):
    """Discards everything (benchmarks, dry runs)."""


def face_records(result: FrameResult, labels: Sequence[str]) -> list[dict[str, Any]]:
    """One record per predicted face: frame, time, track id, box, score, probs, label, source.

    Args:
        result: A processed frame.
        labels: Class names in probability order.

    Returns:
        JSON-ready dicts, in the order of ``result.predictions``.
    """
    rows = {int(t): i for i, t in enumerate(result.tracks.track_id)}
    records = []
    for tid, probs in zip(result.predictions.track_id, result.predictions.probs, strict=True):
        row = rows.get(int(tid))
        if row is None:
            continue
        top = int(np.argmax(probs))
        records.append(
            {
                "frame": result.frame.index,
                "t_s": None if result.frame.t_s is None else round(result.frame.t_s, 4),
                "track_id": int(tid),
                "box": [round(float(v), 1) for v in result.tracks.xyxy[row]],
                "score": round(float(result.tracks.score[row]), 4),
                "probs": dict(zip(labels, np.round(probs.astype(float), 5).tolist(), strict=True)),
                "label": labels[top],
                "confidence": round(float(probs[top]), 5),
                "source": result.frame.source_id,
                "box_source": result.box_source,
            }
        )
    return records


class JsonlSink(Sink):
    """Per-face per-frame records as JSON Lines, flushed after every frame."""

    def __init__(self, path: Path, labels: Sequence[str]) -> None:
        self.labels = tuple(labels)
        self._staged = StagedFile(path)
        self._file: IO[str] | None = _open_text(self._staged.temp)

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        if self._file is None:
            return
        for record in face_records(result, self.labels):
            self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._staged.commit()

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._staged.discard()


class CsvSink(Sink):
    """The same records as CSV: one column per box coordinate and per class probability."""

    def __init__(self, path: Path, labels: Sequence[str]) -> None:
        self.labels = tuple(labels)
        self._staged = StagedFile(path)
        self._file: IO[str] | None = _open_text(self._staged.temp, newline="")
        self._writer = csv.writer(self._file)
        header = ["frame", "t_s", "track_id", "x0", "y0", "x1", "y1", "score"]
        probs = [f"p_{label}" for label in self.labels]
        self._writer.writerow(header + probs + ["label", "confidence", "source", "box_source"])
        self._file.flush()

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        if self._file is None:
            return
        for r in face_records(result, self.labels):
            probs = [r["probs"][label] for label in self.labels]
            self._writer.writerow(
                [
                    *(r["frame"], r["t_s"], r["track_id"], *r["box"], r["score"]),
                    *(*probs, r["label"], r["confidence"], r["source"], r["box_source"]),
                ]
            )
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._staged.commit()

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._staged.discard()


class VideoFileSink(Sink):
    """Annotated video, encoded on its own thread behind a bounded queue.

    The container opens on the first frame (its size becomes the video size; later frames of
    another size are resized) and is finalized in ``close()``, so the file plays after Ctrl-C.

    Args:
        path: Output file (``.mp4``, ``.mkv``, ...).
        fps: Frame rate to write (the source's).
        queue_size: Frames that may wait for the encoder before ``write`` blocks.
        codec: Preferred encoder; falls back to ``mpeg4`` when it is unavailable.
        timed: Stamp frames with their capture time (ms) instead of a constant rate, so a
            live source that drops frames still plays back in real time.
    """

    needs_image = True

    def __init__(
        self,
        path: Path,
        fps: float,
        queue_size: int = 8,
        codec: str = "libx264",
        timed: bool = False,
    ) -> None:
        self.path = Path(path)
        self._staged = StagedFile(self.path)
        self.fps = fps if fps and fps > 0 else 30.0
        self.codec = codec
        self.timed = timed
        self.frames_written = 0
        self._queue: queue.Queue[tuple[np.ndarray, float] | None] = queue.Queue(queue_size)
        self._error: BaseException | None = None
        _open_text(self._staged.temp).close()  # fail now, not on the encoder thread
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
        self._queue.put((image, result.frame.t_s))

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
            if self.frames_written == 0 or self._error is not None:
                self._staged.discard()  # no frame, or a broken container: leave no file
            else:
                self._staged.commit()
        self._raise_encoder_error()

    def _raise_encoder_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise FerLiveError(f"cannot write video '{self.path}': {error}") from None

    def _encode_loop(self) -> None:
        import av

        container = stream = None
        try:
            last_pts = -1
            while (item := self._queue.get()) is not None:
                image, t_s = item
                if container is None:
                    container = av.open(str(self._staged.temp), mode="w")
                    stream = self._add_stream(container, image.shape[1], image.shape[0])
                frame = av.VideoFrame.from_ndarray(_fit(image, stream), format="bgr24")
                timed = self.timed and t_s is not None
                pts = round(t_s * 1000) if timed else self.frames_written
                frame.pts = last_pts = max(pts, last_pts + 1)
                container.mux(stream.encode(frame))
                self.frames_written += 1
            if container is not None:
                container.mux(stream.encode(None))
        except Exception as exc:  # reported to the caller on the next write/close
            self._error = exc
            _drain(self._queue)
        finally:
            if container is not None:
                try:
                    container.close()
                except Exception as exc:  # e.g. disk full while writing the index
                    self._error = self._error or exc

    def _add_stream(self, container: Any, width: int, height: int) -> Any:
        import av

        rate = Fraction(self.fps).limit_denominator(1001)
        try:
            stream = container.add_stream(self.codec, rate=rate)
        except (av.FFmpegError, ValueError):
            logger.warning("encoder %s unavailable; using mpeg4", self.codec)
            stream = container.add_stream("mpeg4", rate=rate)
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000) if self.timed else 1 / rate
        if stream.codec_context.name == "libx264":
            # superfast: ~2.4 ms of one core per 640x360 frame (veryfast ~3.6, ultrafast ~1.3
            # but 2x the file size), measured on the 2-core dev machine.
            stream.codec_context.options = {"preset": "superfast", "crf": "23"}
        return stream


class ImageDirSink(Sink):
    """Annotated images into a folder, one file per frame (for image sources)."""

    needs_image = True

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
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
    """An OpenCV window; ``q``, Esc or closing the window sets ``stop_requested``."""

    needs_image = True

    def __init__(self, title: str = "fer-live") -> None:
        self.title = title
        self._open = False

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        if image is None:
            raise ValueError("WindowSink needs the rendered image")
        cv2.imshow(self.title, image)
        self._open = True
        key = cv2.waitKey(1) & 0xFF
        closed = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        if key in (ord("q"), 27) or closed:
            self.stop_requested = True

    def close(self) -> None:
        if self._open:
            cv2.destroyWindow(self.title)
            self._open = False


def _open_text(path: Path, newline: str | None = None) -> IO[str]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", encoding="utf-8", newline=newline)
    except OSError as exc:
        raise FerLiveError(f"cannot write '{path}': {exc.strerror}") from None


def _fit(image: np.ndarray, stream: Any) -> np.ndarray:
    """Resize or pad ``image`` to the stream's (even) size."""
    h, w = image.shape[:2]
    if (w, h) == (stream.width, stream.height):
        return image
    if (w + w % 2, h + h % 2) == (stream.width, stream.height):
        return cv2.copyMakeBorder(image, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
    return cv2.resize(image, (stream.width, stream.height), interpolation=cv2.INTER_AREA)


def _drain(q: queue.Queue[tuple[np.ndarray, float] | None]) -> None:
    """Keep taking items so producers never block on a dead encoder."""
    while q.get() is not None:
        pass


def open_sinks(
    output: OutputConfig,
    labels: Sequence[str],
    fps: float | None,
    window: bool | None = None,
    live: bool = False,
    inputs: Sequence[Path] = (),
) -> list[Sink]:
    """The sinks an output config asks for (a NullSink when it asks for none).

    Args:
        output: Output paths and window choice.
        labels: Class names, for the record sinks.
        fps: Frame rate of an output video (None: unknown, 30 is used).
        window: Override ``output.show_window`` (benchmarks never open one).
        live: The source drops frames: stamp video frames with their capture times.
        inputs: Local files the source reads; no output may be one of them.

    Returns:
        Sinks in write order; enter each as a context manager.

    Raises:
        ConfigError: An output is an input, or two outputs are one file (nothing opened yet).
    """
    check_outputs(output, inputs)
    sinks: list[Sink] = []
    try:
        if output.video is not None:
            is_video = output.video.suffix.lower() in VIDEO_SUFFIXES
            video = VideoFileSink(output.video, fps or 30.0, timed=live) if is_video else None
            sinks.append(video or ImageDirSink(output.video))
        if output.jsonl is not None:
            sinks.append(JsonlSink(output.jsonl, labels))
        if output.csv is not None:
            sinks.append(CsvSink(output.csv, labels))
    except Exception:
        for sink in sinks:  # a later output failed to open: leave no half-made earlier ones
            sink.abort()
        raise
    if output.show_window if window is None else window:
        sinks.append(WindowSink())
    return sinks or [NullSink()]
