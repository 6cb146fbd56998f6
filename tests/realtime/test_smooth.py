"""Smoothers: registry, EMA behaviour, per-track windows and eviction."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fer_live.commands.app import build_config
from fer_live.errors import ConfigError
from fer_live.smooth.table import SMOOTHERS, SmootherEntry, make_smoother, smoother_help
from fer_live.smooth.window import EmaSmoother, NoSmoother
from fer_live.types import Predictions


def preds(ids, probs, emb=None) -> Predictions:
    probs = np.asarray(probs, np.float32)
    probs = probs / probs.sum(axis=1, keepdims=True)
    return Predictions(np.asarray(ids, np.int64), probs, emb)


def test_registry_has_none_and_ema_and_names_valid_ones_on_typos():
    assert {"none", "ema"} <= set(SMOOTHERS)
    assert isinstance(make_smoother("none"), NoSmoother)
    assert isinstance(make_smoother("ema", time_constant_s=0.1), EmaSmoother)
    with pytest.raises(ConfigError, match="must be one of auto, ema, .*none, got 'emma'"):
        make_smoother("emma")
    with pytest.raises(ConfigError, match="bad arguments"):
        make_smoother("ema", alpha_typo=1)


def test_one_table_entry_makes_a_smoother(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a smoother registered in the table only
    monkeypatch.setitem(SMOOTHERS, "hold", SmootherEntry("hold", NoSmoother, "rows as they come"))
    # when / then: it is built by name, listed in the help, and --smooth and --vs-smooth take it
    assert isinstance(make_smoother("hold"), NoSmoother)
    assert "hold (rows as they come)" in smoother_help()
    assert build_config(source="clip.mp4", smooth="hold").smooth.name == "hold"
    with pytest.raises(ConfigError, match="--smooth must be one of auto, ema, graph, none, hold"):
        build_config(source="clip.mp4", smooth="kalman")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"window": 0}, "window"),
        ({"evict_after_s": 0}, "evict_after_s"),
        ({"time_constant_s": -1}, "time_constant_s"),
    ],
)
def test_ema_validates_arguments(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        EmaSmoother(**kwargs)


row_strategy = st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3)


@settings(max_examples=50, deadline=None)
@given(st.lists(row_strategy, min_size=1, max_size=20), st.floats(0.0, 2.0))
def test_ema_rows_sum_to_one_and_stay_in_the_hull(rows, tau):
    smoother = EmaSmoother(time_constant_s=tau)
    seen = []
    for i, row in enumerate(rows):
        p = preds([0], [row])
        seen.append(p.probs[0])
        out = smoother.smooth(p, i / 30.0).probs[0]
        np.testing.assert_allclose(out.sum(), 1.0, rtol=1e-5)
        hull = np.stack(seen)
        assert (out >= hull.min(axis=0) - 1e-6).all() and (out <= hull.max(axis=0) + 1e-6).all()


def test_constant_sequence_comes_back_unchanged():
    smoother = EmaSmoother(time_constant_s=0.5)
    p = preds([4, 5], [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    for i in range(10):
        out = smoother.smooth(p, i * 0.04)
        np.testing.assert_allclose(out.probs, p.probs, rtol=1e-6)
        np.testing.assert_array_equal(out.track_id, p.track_id)


def test_zero_time_constant_is_identity():
    smoother = EmaSmoother(time_constant_s=0.0, window=1)
    for i, row in enumerate([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]):
        p = preds([1], [row])
        np.testing.assert_allclose(smoother.smooth(p, i * 0.1).probs, p.probs)


def test_ema_is_frame_rate_independent():
    # given the same step change sampled at 10 fps and at 40 fps
    a, b = [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]
    outs = []
    for fps in (10, 40):
        smoother = EmaSmoother(time_constant_s=0.2)
        smoother.smooth(preds([0], a), 0.0)
        for i in range(1, fps // 2 + 1):  # half a second of b
            out = smoother.smooth(preds([0], b), i / fps)
        outs.append(out.probs[0])
    # then the state after 0.5 s is the same: 1 - exp(-0.5 / 0.2)
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-5)
    np.testing.assert_allclose(outs[0][1], 1 - np.exp(-2.5), atol=1e-5)


def test_new_track_starts_from_its_own_first_row():
    smoother = EmaSmoother(time_constant_s=10.0)
    smoother.smooth(preds([0], [[1.0, 0.0, 0.0]]), 0.0)
    out = smoother.smooth(preds([0, 1], [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), 0.1)
    np.testing.assert_allclose(out.probs[1], [0.0, 0.0, 1.0])


def test_windows_keep_last_w_rows_and_evict_stale_tracks():
    smoother = EmaSmoother(window=3, evict_after_s=1.0)
    emb = np.ones((1, 2), np.float32)
    for i in range(5):
        smoother.smooth(preds([7], [[1.0, 1.0, 1.0 + i]], emb * i), i * 0.1)
    window = smoother.windows[7]
    assert len(window.probs) == 3
    assert list(window.t_s) == pytest.approx([0.2, 0.3, 0.4])
    assert [float(e[0]) for e in window.embeddings] == [2.0, 3.0, 4.0]
    # when track 7 is unseen for more than evict_after_s
    smoother.smooth(preds([8], [[1.0, 1.0, 1.0]]), 1.5)
    # then it is gone, and when it comes back it restarts fresh
    assert 7 not in smoother.windows and 8 in smoother.windows
    out = smoother.smooth(preds([7], [[0.0, 0.0, 1.0]]), 1.6)
    np.testing.assert_allclose(out.probs[0], [0.0, 0.0, 1.0])


def test_reset_forgets_everything_and_empty_predictions_pass_through():
    smoother = EmaSmoother()
    smoother.smooth(preds([1], [[1.0, 2.0, 3.0]]), 0.0)
    smoother.reset()
    assert not smoother.windows
    empty = Predictions.empty(3)
    assert len(smoother.smooth(empty, 1.0)) == 0
