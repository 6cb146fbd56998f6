"""The definitions ``benchmarks/events.py`` scores with: found changes, matched events, onset
delay and the causes of false events, on scripted sequences."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import ModuleType

import numpy as np
import pytest

from fer_live.events.detect import EventSettings
from tests.bench_scripts import BENCHMARKS, bench_script

LABELS = ("neutral", "happiness", "surprise", "sadness")
SETTINGS = EventSettings(enter=0.6, exit=0.5, min_s=0.2, gap_s=0.1)


@pytest.fixture(scope="module")
def events_bench() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCHMARKS))  # it imports temporal.py by name, as a script does
    try:
        with bench_script("events") as module:
            yield module
    finally:
        sys.path.remove(str(BENCHMARKS))


def _frames(*parts: tuple[str, int]) -> np.ndarray:
    """(label, frames) parts -> one-hot-ish rows (0.9 on the label)."""
    rows = []
    for label, n in parts:
        row = np.full(len(LABELS), 0.1 / (len(LABELS) - 1))
        row[LABELS.index(label)] = 0.9
        rows += [row] * n
    return np.array(rows)


def test_a_switch_found_with_its_onset_delay(events_bench: ModuleType) -> None:
    # given happiness -> surprise where the stream follows 3 frames after the switch
    probs = _frames(("happiness", 33), ("surprise", 27))
    # when
    score = events_bench.score_switches([(probs, "happiness", "surprise")], LABELS, SETTINGS, 10)
    # then: found, both events match their stretches, 3 frames late
    assert (score["recall"], score["precision"], score["onset_delay_frames"]) == (1.0, 1.0, 3.0)


def test_a_switch_followed_too_late_is_not_found(events_bench: ModuleType) -> None:
    probs = _frames(("happiness", 45), ("surprise", 15))  # 15 frames late
    score = events_bench.score_switches([(probs, "happiness", "surprise")], LABELS, SETTINGS, 10)
    assert score["recall"] == 0.0
    assert score["precision"] == 0.5  # happiness matches, the late surprise does not


def test_a_switch_to_neutral_is_found_by_the_offset(events_bench: ModuleType) -> None:
    probs = _frames(("happiness", 32), ("neutral", 28))
    score = events_bench.score_switches([(probs, "happiness", "neutral")], LABELS, SETTINGS, 10)
    assert (score["recall"], score["precision"]) == (1.0, 1.0)


def test_false_events_are_split_by_cause(events_bench: ModuleType) -> None:
    # given no-change sequences: a neutral face the stream reads as sadness, a smile found late,
    # a smile split in two, and a clean smile
    sequences = [
        (_frames(("sadness", 30)), "neutral"),
        (_frames(("neutral", 15), ("happiness", 15)), "happiness"),
        (_frames(("happiness", 12), ("neutral", 6), ("happiness", 12)), "happiness"),
        (_frames(("happiness", 30)), "happiness"),
    ]
    # when
    score = events_bench.score_still(sequences, LABELS, SETTINGS, 10)
    # then: one of each cause over 4 sequences
    assert score["false_per_100"] == 75.0
    assert score["false_stream_per_100"] == 25.0
    assert score["false_late_per_100"] == 25.0
    assert score["false_other_per_100"] == 25.0
    assert score["stretch_recall"] == pytest.approx(2 / 3)
