"""The source's sound in the annotated video.

``VideoFileSink`` encodes pictures only. Before its staged file is renamed into place,
``add_source_audio`` rewrites it with the source's first audio stream beside the pictures, which
are copied, never re-encoded. The audio packets are copied as they are when the container takes
their codec, and re-encoded when it does not (AAC; Opus for WebM, which takes no AAC), and always
for AVI, which plays audio back to back whatever its timestamps say (re-encoding fills the time
before a late start with silence). Audio times are shifted so that the source's first video
frame is time 0, as it is in the annotated video, and the sound stops where the last written
picture ends, so a run cut short by ``--max-frames`` or Ctrl-C stays in sync.
"""

from __future__ import annotations

import heapq
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from fer_live.outputs.staged import fit_name

logger = logging.getLogger(__name__)

# (encoder, sample rate) when the audio must be re-encoded; None keeps the source's rate.
# WebM takes only Opus or Vorbis, and libopus runs at 48 kHz; AAC goes in every other container.
_ENCODERS: dict[str, tuple[str, int | None]] = {".webm": ("libopus", 48000)}
_DEFAULT_ENCODER: tuple[str, int | None] = ("aac", None)
_BIT_RATE = 128_000
# Containers that play audio samples back to back, whatever their timestamps say.
_UNTIMED_AUDIO = (".avi",)

_Timed = tuple[float, Any]  # (decoding time in s, packet): the order the muxer wants


def add_source_audio(source: Path, video: Path, end_s: float) -> None:
    """Give the staged annotated ``video`` the sound of ``source``, in place.

    A source without audio leaves the video as it is. Any failure leaves it as it is too, with
    one warning: the sound is worth less than the pictures.

    Args:
        source: The video file the run read.
        video: The annotated video (pictures only, time 0 = the source's first frame).
        end_s: Where the last written picture ends, in seconds; later sound is cut.
    """
    # fit_name: the staged video's name may already be NAME_MAX bytes long
    with_sound = video.with_name(fit_name(video.stem, f".audio{video.suffix}"))
    try:
        if mux_audio(source, video, with_sound, end_s):
            os.replace(with_sound, video)
    except Exception as exc:  # whatever FFmpeg or the disk raise, keep the video
        reason = " ".join(str(exc).split()) or type(exc).__name__
        logger.warning("could not add the sound of '%s' (%s); the video has none", source, reason)
    finally:
        with_sound.unlink(missing_ok=True)


def mux_audio(source: Path, video: Path, out: Path, end_s: float) -> bool:
    """Write ``out``: the pictures of ``video`` and the first audio stream of ``source``.

    A copied stream is read back: FFmpeg 8 reads MP3 copied into Matroska beside a video
    stream back as MP2 (noise), so a codec that does not read back as itself is re-encoded.

    Args:
        source: The video file the run read.
        video: The annotated video (pictures only, time 0 = the source's first frame).
        out: The file to write (its suffix picks the container).
        end_s: Where the last written picture ends, in seconds; later sound is cut.

    Returns:
        False when the source has no audio stream (``out`` is not written).

    Raises:
        av.FFmpegError, OSError, ValueError: Reading or writing failed (``out`` may be partial).
    """
    written = _write(source, video, out, end_s, copy=True)
    if written is None:
        return False
    if written.copied and _audio_codec(out) != written.codec:
        _write(source, video, out, end_s, copy=False)
    return True


@dataclass(frozen=True)
class _Written:
    codec: str  # the source's audio codec
    copied: bool  # its packets were copied, not re-encoded


def _write(source: Path, video: Path, out: Path, end_s: float, copy: bool) -> _Written | None:
    """``mux_audio``'s work, copying the audio when ``copy`` and the container allow it."""
    import av

    with av.open(str(source)) as src:
        if not src.streams.audio:
            return None
        audio = src.streams.audio[0]
        codec = audio.codec_context.name
        start_s = _first_picture_s(src)
        with av.open(str(video)) as drawn, av.open(str(out), mode="w") as dst:
            picture = drawn.streams.video[0]
            out_picture = dst.add_stream_from_template(picture)
            suffix = out.suffix.lower()
            copy = copy and suffix not in _UNTIMED_AUDIO and codec in dst.supported_codecs
            if copy:
                out_audio = dst.add_stream_from_template(audio)
                sound = _copied(src, audio, out_audio, start_s, end_s)
            else:
                out_audio = _add_encoder(dst, audio, suffix)
                sound = _encoded(src, audio, out_audio, start_s, end_s)
            pictures = _copied_pictures(drawn, picture, out_picture)
            for _, packet in heapq.merge(pictures, sound, key=lambda item: item[0]):
                dst.mux(packet)
    return _Written(codec, copy)


def _audio_codec(path: Path) -> str | None:
    """The decoder FFmpeg picks for the first audio stream of ``path`` (None: no audio)."""
    import av

    with av.open(str(path)) as container:
        streams = container.streams.audio
        return streams[0].codec_context.name if streams else None


def _first_picture_s(src: Any) -> float:
    """When the source's first video frame shows: time 0 of the annotated video."""
    if not src.streams.video:
        return 0.0
    stream = src.streams.video[0]
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def _copied_pictures(drawn: Any, picture: Any, out_stream: Any) -> Iterator[_Timed]:
    dts_s = 0.0
    for packet in drawn.demux(picture):
        if packet.size == 0:  # the demuxer's empty packet at the end
            continue
        if packet.dts is not None:  # Matroska leaves it out on reordered (B) frames
            dts_s = float(packet.dts * packet.time_base)
        packet.stream = out_stream
        yield dts_s, packet


def _copied(
    src: Any, audio: Any, out_stream: Any, start_s: float, end_s: float
) -> Iterator[_Timed]:
    """The source's audio packets, shifted to the video's time 0 and cut at ``end_s``."""
    base = audio.time_base
    shift = round(start_s / base)
    for packet in src.demux(audio):
        if packet.pts is None or packet.dts is None:
            continue
        packet.pts -= shift
        packet.dts -= shift
        t_s = float(packet.pts * base)
        if t_s >= end_s:
            break
        if t_s + float((packet.duration or 0) * base) <= 0:
            continue  # all of it before the first picture
        packet.stream = out_stream
        yield float(packet.dts * base), packet


def _add_encoder(dst: Any, audio: Any, suffix: str) -> Any:
    codec, rate = _ENCODERS.get(suffix, _DEFAULT_ENCODER)
    stream = dst.add_stream(codec, rate=rate or audio.codec_context.sample_rate)
    stream.codec_context.layout = audio.codec_context.layout
    stream.codec_context.bit_rate = _BIT_RATE
    return stream


def _encoded(
    src: Any, audio: Any, out_stream: Any, start_s: float, end_s: float
) -> Iterator[_Timed]:
    """The source's audio decoded, shifted to the video's time 0, cut at ``end_s`` and encoded.

    Gaps (a sound that starts after the first picture, an undecodable packet) are filled with
    silence.
    """
    next_pts = 0
    for frame in _decoded(src, audio):
        if frame.time is None:
            continue
        t_s = float(frame.time) - start_s
        if t_s >= end_s:
            break
        if t_s + frame.samples / frame.sample_rate <= 0:
            continue
        frame.time_base = Fraction(1, frame.sample_rate)
        frame.pts = round(t_s * frame.sample_rate)
        if frame.pts > next_pts:
            yield from _timed(out_stream.encode(_silence(frame, next_pts, frame.pts - next_pts)))
        next_pts = frame.pts + frame.samples
        yield from _timed(out_stream.encode(frame))
    yield from _timed(out_stream.encode(None))


def _decoded(src: Any, audio: Any) -> Iterator[Any]:
    """The audio stream's frames; a corrupt packet is skipped, not fatal."""
    import av

    for packet in src.demux(audio):
        try:
            yield from packet.decode()
        except (av.FFmpegError, ValueError) as exc:
            logger.debug("skipped an undecodable audio packet: %s", exc)


def _silence(like: Any, pts: int, samples: int) -> Any:
    """``samples`` of silence from ``pts``, in the format, layout and rate of frame ``like``."""
    import av

    frame = av.AudioFrame(format=like.format.name, layout=like.layout.name, samples=samples)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate, frame.time_base, frame.pts = like.sample_rate, like.time_base, pts
    return frame


def _timed(packets: list[Any]) -> Iterator[_Timed]:
    for packet in packets:
        yield float(packet.dts * packet.time_base), packet
