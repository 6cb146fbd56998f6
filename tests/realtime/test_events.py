"""Expression events: scripted probability streams give exactly the expected events."""

from __future__ import annotations

import numpy as np
import pytest

from fer_live.errors import ConfigError
from fer_live.events.detect import (
    Event,
    EventDetector,
    EventSettings,
    TrackEvents,
    events_of_series,
)

LABELS = ("neutral", "happiness", "surprise")
FPS = 10.0
# at 10 fps: a class must qualify on 3 frames (0.2 s first to last) to open an event, and an
# event closes on the 3rd frame after the last one its class held
SETTINGS = EventSettings(enter=0.6, exit=0.4, min_s=0.2, gap_s=0.3)


def stream(*parts: tuple[str, float, int]) -> np.ndarray:
    """(label, probability, frames) parts -> (T, 3) rows; the rest goes to neutral."""
    rows = []
    for label, p, n in parts:
        row = np.zeros(len(LABELS))
        row[LABELS.index(label)] = p
        row[0] += 1.0 - p
        rows += [row] * n
    return np.array(rows)


def run(probs: np.ndarray, settings: EventSettings = SETTINGS) -> list[Event]:
    frames = np.arange(len(probs))
    return events_of_series(7, frames, frames / FPS, probs, LABELS, settings)


def spans(events: list[Event]) -> list[tuple[str, int, int, int]]:
    return [(e.label, e.onset_frame, e.apex_frame, e.offset_frame) for e in events]


def test_one_stretch_gives_onset_apex_offset_duration_and_means():
    # given neutral, then happiness rising to an apex, then neutral
    probs = stream(("neutral", 1.0, 5), ("happiness", 0.7, 2), ("happiness", 0.9, 1),
                   ("happiness", 0.8, 3), ("neutral", 1.0, 6))  # fmt: skip
    # when
    (event,) = run(probs)
    # then
    assert (event.track_id, event.label) == (7, "happiness")
    assert (event.onset_frame, event.apex_frame, event.offset_frame) == (5, 7, 10)
    assert event.onset_t_s == pytest.approx(0.5)
    assert event.apex_t_s == pytest.approx(0.7)
    assert event.offset_t_s == pytest.approx(1.0)
    assert event.duration_s == pytest.approx(0.5)
    assert event.apex_prob == pytest.approx(0.9)
    assert event.mean_prob == pytest.approx((0.7 * 2 + 0.9 + 0.8 * 3) / 6)
    assert event.frames == 6


def test_hysteresis_holds_through_a_dip_and_counts_it_in_the_mean():
    # given a dip below enter (still >= exit) and one below exit, shorter than gap_s
    probs = stream(("happiness", 0.8, 4), ("happiness", 0.5, 2), ("happiness", 0.2, 2),
                   ("happiness", 0.8, 4))  # fmt: skip
    # when
    events = run(probs)
    # then: one event over all 12 frames, the dip frames in its mean
    assert spans(events) == [("happiness", 0, 0, 11)]
    assert events[0].mean_prob == pytest.approx((0.8 * 8 + 0.5 * 2 + 0.2 * 2) / 12)
    assert events[0].frames == 12


def test_a_dip_as_long_as_gap_s_splits_the_stretch_and_the_offset_is_the_last_hold():
    # given a dip below exit of 3 frames (0.3 s after the last frame that held)
    probs = stream(("happiness", 0.8, 4), ("happiness", 0.3, 3), ("happiness", 0.8, 4))
    # when / then: the first event ends at frame 3, not in the dip
    assert spans(run(probs)) == [("happiness", 0, 0, 3), ("happiness", 7, 7, 10)]


def test_too_short_a_stretch_is_no_event():
    # given 2 qualifying frames (0.1 s < min_s), and 3 frames that never reach enter
    probs = stream(("neutral", 1.0, 3), ("surprise", 0.9, 2), ("neutral", 1.0, 3),
                   ("surprise", 0.55, 3), ("neutral", 1.0, 3))  # fmt: skip
    # when / then
    assert run(probs) == []


def test_neutral_never_forms_an_event():
    assert run(stream(("neutral", 1.0, 30))) == []


def test_the_end_of_the_stream_closes_the_open_event_at_its_last_hold():
    # given happiness that is still held, then falls below exit on the last two frames
    probs = stream(("happiness", 0.9, 5), ("happiness", 0.1, 2))
    # when: the track ends before gap_s passed
    events = run(probs)
    # then: closed at the last frame it held
    assert spans(events) == [("happiness", 0, 0, 4)]


def test_a_class_switch_closes_one_event_and_opens_the_next_at_its_onset():
    # given happiness, then surprise straight away (no neutral between)
    probs = stream(("happiness", 0.9, 5), ("surprise", 0.7, 5))
    # when
    events = run(probs)
    # then: happiness ends the frame before surprise's onset
    assert spans(events) == [("happiness", 0, 0, 4), ("surprise", 5, 5, 9)]


def test_a_short_intrusion_of_another_class_does_not_split_the_event():
    # given happiness, 2 frames of surprise (too short to take over), happiness again
    rows = stream(("happiness", 0.9, 5), ("surprise", 0.7, 2), ("happiness", 0.9, 5))
    # when / then: one happiness event over the whole stretch
    assert spans(run(rows)) == [("happiness", 0, 0, 11)]


def test_events_come_out_as_soon_as_they_close():
    # given a track fed frame by frame
    track = TrackEvents(1, LABELS, SETTINGS)
    probs = stream(("happiness", 0.9, 4), ("neutral", 1.0, 5))
    # when
    closed_at = [i for i, row in enumerate(probs) if track.push(i, i / FPS, row)]
    # then: on the 3rd frame after the last hold (0.3 s), not at the end
    assert closed_at == [6]
    assert track.close() == []


def test_a_track_missing_from_a_frame_has_ended_and_its_event_closes():
    # given two tracks smiling, then track 2 is gone
    detector = EventDetector(LABELS, SETTINGS)
    smile = stream(("happiness", 0.9, 1))[0]
    for i in range(4):
        assert detector.update(i, i / FPS, {1: smile, 2: smile}) == []
    # when
    closed = detector.update(4, 0.4, {1: smile})
    # then: track 2's event closes now, track 1's at the end of the stream
    assert [(e.track_id, e.offset_frame) for e in closed] == [(2, 3)]
    assert [(e.track_id, e.offset_frame) for e in detector.close()] == [(1, 4)]


def test_the_pending_frames_stay_bounded_on_a_long_stream():
    # given a long stream that flickers between two classes and neutral
    rng = np.random.default_rng(0)
    track = TrackEvents(1, LABELS, SETTINGS)
    for i in range(5000):
        row = rng.dirichlet(np.ones(3) * 0.3)
        track.push(i, i / FPS, row)
        # then: never more frames waiting than fit in max(min_s, gap_s) (+ the newest)
        assert len(track._pending) <= 5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"enter": 0.0}, "enter"),
        ({"exit": 1.5}, "exit"),
        ({"enter": 0.4, "exit": 0.5}, "exit .* must be <= enter"),
        ({"min_s": -1.0}, "min_s"),
        ({"gap_s": float("nan")}, "gap_s"),
    ],
)
def test_settings_out_of_range_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        EventSettings(**kwargs)


def test_a_row_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        TrackEvents(1, LABELS).push(0, 0.0, np.ones(4) / 4)
