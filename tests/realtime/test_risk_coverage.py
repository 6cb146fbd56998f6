"""``benchmarks/risk_coverage.py``'s arithmetic: the C for a coverage, and what C answers."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import numpy as np
import pytest

from fer_live.infer.decision import UNCERTAIN
from tests.bench_scripts import BENCHMARKS, bench_script


@pytest.fixture
def rc(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # it imports folder_check and robustness
    with bench_script("risk_coverage") as module:
        yield module


def _scored(rc: ModuleType) -> object:
    # six images: five faces found (one at each confidence), one not found
    confidence = np.array([0.9, 0.8, 0.8, 0.7, 0.6, np.nan])
    correct = np.array([True, True, False, True, False, False])
    return rc.Scored(confidence, correct, ~np.isnan(confidence))


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (0.5, 0.8),  # 3 of 6: the tie at 0.8 is answered whole
        (0.34, 0.8),
        (0.6, 0.7),  # 4 of 6
        (5 / 6, 0.6),  # every face found
        (0.9, None),  # more than the faces found: no C reaches it
    ],
)
def test_threshold_is_the_largest_c_reaching_the_coverage(rc, target, expected) -> None:
    scored = _scored(rc)
    c = scored.threshold(target)
    assert c == expected
    if c is not None:
        assert scored.at(c)["coverage"] >= round(target, 4)


def test_at_answers_a_face_equal_to_c_and_never_one_not_found(rc) -> None:
    scored = _scored(rc)
    assert scored.at(0.8) == {"C": 0.8, "answered": 3, "coverage": 0.5, "accuracy": 0.6667}
    assert scored.at(None)["answered"] == 5  # off: every face found, the missing one never
    assert scored.at(1.0)["answered"] == 0


def test_records_keep_their_class_when_labelled_uncertain(rc) -> None:
    # given: the best records of two images, one of them uncertain; a third has none
    classes = ("neutral", "happiness")
    best = {
        "a.png": {"confidence": 0.55, "probs": {"neutral": 0.45, "happiness": 0.55}},
        "b.png": {
            "confidence": 0.9,
            "label": UNCERTAIN,
            "probs": {"neutral": 0.9, "happiness": 0.1},
        },
    }
    labels = np.array([1, 1, 0])
    # when
    scored = rc.scored_from_records(best, ["a.png", "b.png", "c.png"], labels, classes)
    # then
    assert scored.found.tolist() == [True, True, False]
    assert scored.correct.tolist() == [True, False, False]
    assert scored.confidence[:2].tolist() == [0.55, 0.9]
