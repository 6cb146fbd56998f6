"""``--min-confidence``: the threshold rule, and what records, the overlay, the flags and reports
make of it (no model, no data: exact probabilities in, labels out)."""

from __future__ import annotations

import math
from contextlib import nullcontext as does_not_raise
from pathlib import Path

import numpy as np
import pytest

from fer_live.commands.app import build_config
from fer_live.config import OutputConfig
from fer_live.errors import ConfigError
from fer_live.infer.decision import UNCERTAIN, decide_label, is_uncertain
from fer_live.outputs.records import face_records
from fer_live.outputs.render import PALETTE, UNCERTAIN_COLOUR, OverlayRenderer
from fer_live.report.read import UNCERTAIN_INDEX, group_records
from fer_live.report.summary import shares_table, summarize_all
from fer_live.types import Frame, FrameResult, Predictions, Tracks

LABELS = ("neutral", "happiness", "surprise")


@pytest.mark.parametrize(
    ("confidence", "min_confidence", "expected"),
    [
        (0.59999, 0.6, True),  # below C
        (0.6, 0.6, False),  # equal to C is answered
        (0.60001, 0.6, False),
        (0.99999, 1.0, True),  # C = 1 answers only certainty
        (1.0, 1.0, False),
        (0.0, 1e-9, True),
        (0.2, None, False),  # off: never uncertain
    ],
)
def test_is_uncertain_only_below_the_threshold(confidence, min_confidence, expected) -> None:
    # when
    got = is_uncertain(confidence, min_confidence)
    # then
    assert got.shape == () and bool(got) is expected


def test_is_uncertain_keeps_the_shape_of_an_array() -> None:
    # given
    confidence = np.array([[0.3, 0.5], [0.7, 0.49999]])
    # when / then
    assert is_uncertain(confidence, 0.5).tolist() == [[True, False], [False, True]]
    assert not is_uncertain(confidence, None).any()


@pytest.mark.parametrize(
    ("probs", "min_confidence", "expected"),
    [
        ([0.2, 0.5, 0.3], None, ("happiness", 0.5)),
        ([0.2, 0.5, 0.3], 0.5, ("happiness", 0.5)),
        ([0.2, 0.5, 0.3], 0.51, (UNCERTAIN, 0.5)),
        # compared as records write it (5 decimals): 0.499996 is written 0.5, so it is answered
        ([0.2, 0.499996, 0.300004], 0.5, ("happiness", 0.5)),
    ],
)
def test_decide_label(probs, min_confidence, expected) -> None:
    assert decide_label(np.array(probs), LABELS, min_confidence) == expected


@pytest.mark.parametrize(
    ("value", "expectation"),
    [
        (None, does_not_raise()),
        (1.0, does_not_raise()),
        (0.5, does_not_raise()),
        (1e-6, does_not_raise()),
        (0.0, pytest.raises(ConfigError, match=r"--min-confidence must be in \(0, 1\], got 0.0")),
        (-0.1, pytest.raises(ConfigError, match="--min-confidence")),
        (1.5, pytest.raises(ConfigError, match="got 1.5")),
        (math.nan, pytest.raises(ConfigError, match="got nan")),
        (math.inf, pytest.raises(ConfigError, match="got inf")),
        (True, pytest.raises(ConfigError, match="--min-confidence")),
    ],
)
def test_min_confidence_is_checked_where_the_flag_enters(value, expectation) -> None:
    with expectation:
        config = build_config(source="clip.mp4", min_confidence=value)
        assert config.output.min_confidence == value
    with expectation:
        OutputConfig(min_confidence=value)


def _result(probs: list[list[float]]) -> FrameResult:
    n = len(probs)
    tracks = Tracks(
        np.array([[10.0 + 60 * i, 10.0, 60.0 + 60 * i, 60.0] for i in range(n)], np.float32),
        np.arange(1, n + 1),
        np.full(n, 0.9, np.float32),
        np.ones(n, bool),
    )
    predictions = Predictions(np.arange(1, n + 1), np.array(probs, np.float32))
    frame = Frame(0, 0.0, np.zeros((120, 240, 3), np.uint8), "clip.mp4")
    return FrameResult(frame, tracks, predictions)


def test_records_label_uncertain_and_keep_the_probabilities() -> None:
    # given: one confident face, one unsure one
    result = _result([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25]])
    # when
    plain = face_records(result, LABELS)
    gated = face_records(result, LABELS, min_confidence=0.5)
    # then
    assert [r["label"] for r in plain] == ["neutral", "neutral"]
    assert [r["label"] for r in gated] == ["neutral", UNCERTAIN]
    for before, after in zip(plain, gated, strict=True):
        assert after["probs"] == before["probs"]
        assert after["confidence"] == before["confidence"]
    assert gated[1]["confidence"] == pytest.approx(0.4)


def test_overlay_draws_an_uncertain_face_in_grey() -> None:
    # given
    result = _result([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25]])
    renderer = OverlayRenderer(LABELS, min_confidence=0.5)
    # when
    plan = renderer.plan(240, 120, result.tracks, result.predictions)
    image = renderer.draw(result.frame, result.tracks, result.predictions)
    # then
    sure, unsure = plan.faces
    assert sure.colour == PALETTE[1] and sure.text.startswith("#1 neutral")
    assert unsure.colour == UNCERTAIN_COLOUR and unsure.text == "#2 uncertain 0.40"
    assert UNCERTAIN_COLOUR not in PALETTE
    x0, y0, _, y1 = unsure.box
    assert tuple(image[(y0 + y1) // 2, x0]) == UNCERTAIN_COLOUR  # the box's left edge


def _record(frame: int, label: str, probs: list[float]) -> dict:
    return {
        "frame": frame,
        "t_s": frame / 10,
        "track_id": 3,
        "probs": dict(zip(LABELS, probs, strict=True)),
        "label": label,
        "source": "clip.mp4",
    }


def test_report_counts_uncertain_apart_from_the_expressions() -> None:
    # given: happy, uncertain, happy, surprise, uncertain
    p = [0.3, 0.4, 0.3]
    labels = ["happiness", UNCERTAIN, "happiness", "surprise", UNCERTAIN]
    records = group_records(
        enumerate((_record(i, label, p) for i, label in enumerate(labels)), 1), Path("x")
    )
    # when
    (summary,) = summarize_all(records)
    # then
    assert records.labels == LABELS  # uncertain is no class
    assert records.tracks[0].label.tolist() == [1, UNCERTAIN_INDEX, 1, 2, UNCERTAIN_INDEX]
    assert summary.uncertain == pytest.approx(0.4)
    assert summary.shares == {"neutral": 0.0, "happiness": 0.4, "surprise": 0.2}
    assert summary.dominant == "happiness"
    assert summary.changes == 1  # happiness -> surprise; the uncertain stretches are no change
    table = shares_table([summary], LABELS)
    assert [c.header for c in table.columns] == ["track", "happiness", "surprise", UNCERTAIN]


def test_report_of_a_track_that_is_never_answered() -> None:
    records = group_records(enumerate([_record(0, UNCERTAIN, [0.3, 0.4, 0.3])], 1), Path("x"))
    (summary,) = summarize_all(records)
    assert (summary.dominant, summary.uncertain, summary.changes) == (UNCERTAIN, 1.0, 0)
    assert sum(summary.shares.values()) == 0


def test_report_without_uncertain_records_has_no_uncertain_column() -> None:
    records = group_records(enumerate([_record(0, "neutral", [0.8, 0.1, 0.1])], 1), Path("x"))
    (summary,) = summarize_all(records)
    assert summary.uncertain == 0.0
    assert UNCERTAIN not in [c.header for c in shares_table([summary], LABELS).columns]
