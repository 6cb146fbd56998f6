"""Config dataclasses: validation names the flag, typos get suggestions, sources adapt it."""

from __future__ import annotations

from contextlib import nullcontext as does_not_raise
from pathlib import Path

import pytest

from fer_live.commands.app import build_config
from fer_live.config import (
    BackendConfig,
    BatchConfig,
    CaptureConfig,
    DetectConfig,
    LiveConfig,
    OutputConfig,
)
from fer_live.errors import ConfigError
from fer_live.types import Device


@pytest.mark.parametrize(
    ("config_type", "kwargs", "error"),
    [
        (CaptureConfig, {"source": "clip.mp4", "max_frames": 10}, None),
        (CaptureConfig, {"source": " "}, "--source"),
        (CaptureConfig, {"source": "0", "max_frames": 0}, "--max-frames"),
        (DetectConfig, {"every": 3, "max_faces": 2}, None),
        (DetectConfig, {"every": 0}, "--detect-every"),
        (DetectConfig, {"max_faces": 0}, "--max-faces"),
        (DetectConfig, {"min_score": 1.5}, "--min-score"),
        (DetectConfig, {"tiles": 2}, None),
        (DetectConfig, {"tiles": 5}, "--detect-tiles"),
        (DetectConfig, {"every": None, "tiles": None, "detector": "full"}, None),
        (BackendConfig, {"backend": "onnx", "threads": 2}, None),
        (BackendConfig, {"threads": 0}, "--threads"),
        (BatchConfig, {"frames": 8}, None),
        (BatchConfig, {"frames": 0}, "--batch-frames"),
    ],
)
def test_sub_configs_validate_and_name_the_flag(config_type, kwargs, error) -> None:
    # given / when / then
    with does_not_raise() if error is None else pytest.raises(ConfigError, match=error):
        config_type(**kwargs)


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        ({"detector": "long"}, "--detector must be one of short, full, got 'long'"),
        ({"backend": "tensorflow"}, "--backend must be one of auto, onnx, .* got 'tensorflow'"),
        ({"smooth": "kalman"}, "--smooth must be one of auto, ema, graph, none, got 'kalman'"),
        ({"device": "gpu"}, "--device must be cpu, cuda, cuda:N"),
        ({"detector": "full", "backend": "onnx", "smooth": "none", "device": "cuda:1"}, None),
    ],
)
def test_names_are_checked_against_their_table_where_the_flags_enter(flags, error) -> None:
    # given / when / then: the CLI's flags, before anything opens
    with does_not_raise() if error is None else pytest.raises(ConfigError, match=error):
        build_config(source="clip.mp4", **flags)


def test_output_paths_must_differ(tmp_path: Path) -> None:
    # given the same file for two outputs
    same = tmp_path / "out.jsonl"
    # when / then
    with pytest.raises(ConfigError, match="--jsonl and --csv must be different files, got '.*'"):
        build_config(source="clip.mp4", jsonl=same, csv=same)


def test_record_output_cannot_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--csv must be a file"):
        build_config(source="clip.mp4", csv=tmp_path)


@pytest.mark.parametrize(
    ("headless", "display", "expected"),
    [(None, ":0", True), (None, None, False), (True, ":0", False), (False, None, True)],
)
def test_window_shown_only_with_a_display_unless_forced(
    monkeypatch: pytest.MonkeyPatch, headless: bool | None, display: str | None, expected: bool
) -> None:
    # given
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if display is None:
        monkeypatch.delenv("DISPLAY", raising=False)
    else:
        monkeypatch.setenv("DISPLAY", display)
    # when / then
    assert OutputConfig(headless=headless).show_window is expected


def test_from_dict_suggests_the_closest_key() -> None:
    with pytest.raises(ConfigError, match="did you mean 'detect.every'"):
        LiveConfig.from_dict({"detect": {"evry": 2}})
    with pytest.raises(ConfigError, match="did you mean 'backend'"):
        LiveConfig.from_dict({"backnd": {}})
    with pytest.raises(ConfigError, match="backend.device must be cpu, cuda"):
        LiveConfig.from_dict({"backend": {"device": "gpu"}})


def test_round_trip_through_dict() -> None:
    # given
    config = LiveConfig(
        capture=CaptureConfig("clip.mp4", 5),
        backend=BackendConfig(Path("m.onnx"), "onnx", Device("cuda", 1)),
        output=OutputConfig({"jsonl": Path("a.jsonl")}),
    )
    # when
    again = LiveConfig.from_dict(config.to_dict())
    # then
    assert again == config
    assert config.to_dict()["backend"]["model"] == "m.onnx"
    assert config.to_dict()["backend"]["device"] == "cuda:1"
    assert config.to_dict()["output"]["files"] == {"jsonl": "a.jsonl"}


def test_for_source_adapts_live_and_still_sources() -> None:
    # given
    config = LiveConfig(detect=DetectConfig(every=3), batch=BatchConfig(4))
    # when
    live = config.for_source(live=True, still=False)
    still = config.for_source(live=False, still=True)
    # then: live never batches frames; stills detect every image, report at once, no smoothing
    assert live.batch.frames == 1 and live.detect.every == 3
    assert still.detect.every == 1 and still.track.min_hits == 1 and still.smooth.name == "none"
    # tiles: left to each image's or frame's size (None) unless set
    assert still.detect.tiles is None and live.detect.tiles is None
    assert LiveConfig(detect=DetectConfig(tiles=1)).for_source(False, True).detect.tiles == 1
    assert LiveConfig(detect=DetectConfig(tiles=3)).for_source(False, False).detect.tiles == 3
    video = config.for_source(live=False, still=False)
    assert video.detect.tiles is None and video.batch == config.batch
