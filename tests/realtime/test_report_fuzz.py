"""The records reader of ``fer-live report``, fuzzed: a result or one-line ``RecordsError``.

Arbitrary bytes, arbitrary JSON values per line, and valid records with a field replaced or
dropped: any exception other than ``RecordsError`` fails, and so does a multi-line message.
When the reader accepts a file, its summaries keep their invariants (shares sum to 1, one per
track). A separate test bounds the memory a huge line can take.
"""

from __future__ import annotations

import json
import tracemalloc
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fer_live.report.read import MAX_LINE_BYTES, Records, RecordsError, read_records
from fer_live.report.summary import summarize_all

FUZZ = settings(
    max_examples=80,
    deadline=timedelta(seconds=2),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
LABELS = ("neutral", "happiness", "surprise")
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


def _record(frame: int, track_id: int, t_s: float | None, label: str) -> dict[str, Any]:
    probs = {name: (0.8 if name == label else 0.1) for name in LABELS}
    return {
        "frame": frame,
        "t_s": t_s,
        "track_id": track_id,
        "box": [1.0, 2.0, 30.0, 40.0],
        "score": 0.9,
        "probs": probs,
        "label": label,
        "confidence": 0.8,
        "source": "clip.mp4",
        "box_source": "detector",
    }


VALID = st.builds(
    _record,
    frame=st.integers(0, 500),
    track_id=st.integers(0, 5),
    t_s=st.none() | st.floats(0, 1e4),
    label=st.sampled_from(LABELS),
)


def _read_cleanly(path: Path) -> Records | None:
    """Read; a one-line RecordsError is fine, and an accepted file must summarize soundly."""
    try:
        records = read_records(path)
    except RecordsError as exc:
        message = str(exc)
        assert message and "\n" not in message and len(message) < 1000, message
        return None
    summaries = summarize_all(records)
    assert [s.track_id for s in summaries] == [t.track_id for t in records.tracks]
    for track, summary in zip(records.tracks, summaries, strict=True):
        assert np.all(np.diff(track.frame) >= 0)
        assert summary.records == len(track.frame) > 0
        assert sum(summary.shares.values()) == pytest.approx(1.0, abs=1e-4)
        assert summary.dominant in records.labels
    return records


@FUZZ
@given(data=st.binary(max_size=2000))
@example(data=b"")
@example(data=b"\x00\xff\xfe\n{}\n")
@example(data=b"[" * 100_000)
def test_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(data)
    _read_cleanly(path)


@FUZZ
@given(values=st.lists(JSON_VALUES, min_size=1, max_size=6))
def test_arbitrary_json_lines(tmp_path: Path, values: list[Any]) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_text("".join(json.dumps(v) + "\n" for v in values))
    assert _read_cleanly(path) is None or all(isinstance(v, dict) for v in values)


@FUZZ
@given(
    records=st.lists(VALID, min_size=1, max_size=20),
    victim=st.integers(0, 19),
    key=st.sampled_from(sorted(_record(0, 0, 0.0, "neutral"))),
    value=JSON_VALUES | st.just("__drop__"),
)
def test_valid_records_with_one_field_mutated(
    tmp_path: Path, records: list[dict[str, Any]], victim: int, key: str, value: Any
) -> None:
    # given: valid records, one of which has a field replaced by anything, or dropped
    record = records[victim % len(records)]
    if value == "__drop__":
        record.pop(key)
    else:
        record[key] = value
    path = tmp_path / "fuzz.jsonl"
    path.write_text("".join(json.dumps(r, allow_nan=True) + "\n" for r in records))
    # when / then
    _read_cleanly(path)


@FUZZ
@given(records=st.lists(VALID, min_size=1, max_size=30))
def test_valid_records_are_read_whole(tmp_path: Path, records: list[dict[str, Any]]) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    read = _read_cleanly(path)
    assert read is not None and read.labels == LABELS
    assert sum(len(t.frame) for t in read.tracks) == len(records)
    assert {t.track_id for t in read.tracks} == {r["track_id"] for r in records}


def test_a_huge_line_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    # given: 16 MiB without a newline
    path = tmp_path / "huge.jsonl"
    with open(path, "wb") as handle:
        for _ in range(16):
            handle.write(b"9" * (1 << 20))
    # when
    tracemalloc.start()
    try:
        with pytest.raises(RecordsError, match="longer than"):
            read_records(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # then: about one capped line held, never the file
    assert peak < 4 * MAX_LINE_BYTES
