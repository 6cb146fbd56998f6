"""GUS-T smoother (``--smooth graph``, ``auto``): windows, resets, auto rule, folded projection."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fer_live.config import SmoothConfig
from fer_live.detect.models import sha256_file
from fer_live.errors import ConfigError, ModelError
from fer_live.infer.card import FoldedHead, ModelCard
from fer_live.smooth.gus_head import GusHeadWeights, head_path_for, write_head_file
from fer_live.smooth.gus_kernel import NORMS, newest_features
from fer_live.smooth.gus_t import GraphSmoother, card_beside
from fer_live.smooth.table import SMOOTHERS, make_smoother
from fer_live.smooth.window import EmaSmoother
from fer_live.types import Predictions

D, H, C = 16, 8, 4


def write_head(path: Path, norm: str = "mlgcn", threshold: float = 0.5, **meta: object) -> Path:
    """A random GUS head file (numpy only)."""
    rng = np.random.default_rng(0)
    arrays = {
        "w1": rng.uniform(-0.3, 0.3, (D, H)), "w2": rng.uniform(-0.3, 0.3, (H, H)),
        "fc_w": rng.uniform(-1, 1, (C, H)), "fc_b": np.zeros(C),
    }  # fmt: skip
    return write_head_file(path, arrays, norm=norm, p=0.5, threshold=threshold, **meta)


@pytest.fixture()
def head_file(tmp_path: Path) -> Path:
    return write_head(tmp_path / "m.gus.npz")


def _isolated(weights: GusHeadWeights, f: np.ndarray) -> np.ndarray:
    h = f @ weights.w1
    z = (np.where(h > 0, h, 0.2 * h) @ weights.w2) @ weights.fc_w.T + weights.fc_b
    e = np.exp(z - z.max())
    return e / e.sum()


def _preds(track_ids: list[int], embeddings: np.ndarray) -> Predictions:
    probs = np.full((len(track_ids), C), 1.0 / C, np.float32)
    return Predictions(np.asarray(track_ids, np.int64), probs, embeddings.astype(np.float32))


def _embeddings(n: int, seed: int, base: np.ndarray | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    center = rng.random(D) if base is None else base
    return center + 0.05 * rng.random((n, D))


def test_registered_and_first_frame_is_the_isolated_head(head_file: Path) -> None:
    assert SMOOTHERS["graph"].load_factory() is GraphSmoother
    smoother = make_smoother("graph", head=head_file, model=head_file.with_name("m.onnx"))
    f = _embeddings(1, 0)
    out = smoother.smooth(_preds([7], f), 0.0)
    np.testing.assert_allclose(out.probs[0], _isolated(smoother.weights, f[0]), atol=1e-5)


def test_rows_sum_to_one_and_match_the_full_window_graph(head_file: Path) -> None:
    smoother = GraphSmoother(head=head_file, window=4, ema_s=0.0)
    f = _embeddings(6, 1)
    for i in range(6):
        out = smoother.smooth(_preds([1], f[i : i + 1]), i / 30)
        np.testing.assert_allclose(out.probs.sum(axis=1), 1.0, atol=1e-5)
    # the output is the newest row of the GUS graph over the last W = 4 frames
    z = smoother.weights.logits(f[2:6])[-1]
    np.testing.assert_allclose(out.probs[0], np.exp(z) / np.exp(z).sum(), atol=1e-5)


def test_windows_never_mix_tracks(head_file: Path) -> None:
    alone, both = GraphSmoother(head=head_file), GraphSmoother(head=head_file)
    f1, f2 = _embeddings(5, 2), _embeddings(5, 3)
    for i in range(5):
        a = alone.smooth(_preds([1], f1[i : i + 1]), i / 30)
        b = both.smooth(_preds([2, 1], np.stack([f2[i], f1[i]])), i / 30)
    np.testing.assert_allclose(b.probs[1], a.probs[0], atol=1e-6)


@pytest.mark.parametrize("cause", ["gap", "identity"])
def test_window_resets_on_gap_or_identity_switch(head_file: Path, cause: str) -> None:
    smoother = GraphSmoother(head=head_file, max_gap_s=0.5, reset_cos=0.3)
    f = _embeddings(4, 4)
    for i in range(4):
        smoother.smooth(_preds([1], f[i : i + 1]), i / 30)
    if cause == "gap":  # the same face after 1 s: the window restarts
        new, t = f[:1].copy(), 4 / 30 + 1.0
    else:  # an embedding orthogonal to the last one (cos 0 < 0.3) on the next frame
        v = np.random.default_rng(9).standard_normal(D)
        new, t = (v - (v @ f[-1]) / (f[-1] @ f[-1]) * f[-1])[None, :], 4 / 30
    out = smoother.smooth(_preds([1], new), t)
    np.testing.assert_allclose(out.probs[0], _isolated(smoother.weights, new[0]), atol=1e-5)


def test_no_embedding_or_wrong_size_is_a_model_error(head_file: Path) -> None:
    smoother = GraphSmoother(head=head_file)
    with pytest.raises(ModelError, match="embedding"):
        smoother.smooth(Predictions(np.array([1]), np.full((1, C), 0.25, np.float32)), 0.0)
    with pytest.raises(ModelError, match="16-d"):
        smoother.smooth(_preds([1], np.ones((1, 5))), 0.0)


def test_head_found_beside_the_model_and_checked_against_it(tmp_path: Path) -> None:
    model = tmp_path / "fer_x.onnx"
    model.write_bytes(b"model bytes")
    assert head_path_for(model) == tmp_path / "fer_x.gus.npz"
    write_head(head_path_for(model), base_sha256=sha256_file(model))
    assert GraphSmoother(model=model).weights.embedding_dim == D
    model.write_bytes(b"another model")
    with pytest.raises(ModelError, match="another model"):
        GraphSmoother(model=model)
    with pytest.raises(ModelError, match="not found"):
        GraphSmoother(model=tmp_path / "missing.onnx")


def test_constant_sequence_is_stable_and_reset_forgets(head_file: Path) -> None:
    smoother = GraphSmoother(head=head_file, ema_s=0.1)
    f = _embeddings(1, 5)
    outs = [smoother.smooth(_preds([3], f), i / 30).probs[0] for i in range(5)]
    np.testing.assert_allclose(outs[-1], outs[0], atol=1e-5)
    smoother.reset()
    assert smoother.smooth(_preds([3], f), 1.0).probs.shape == (1, C)


def test_output_ema_is_frame_rate_independent(head_file: Path) -> None:
    f = _embeddings(2, 6)
    raw = GraphSmoother(head=head_file, ema_s=0.0)
    first = raw.smooth(_preds([1], f[:1]), 0.0).probs[0]
    second = raw.smooth(_preds([1], f[1:]), 0.1).probs[0]
    smoother = GraphSmoother(head=head_file, ema_s=0.2)
    smoother.smooth(_preds([1], f[:1]), 0.0)
    got = smoother.smooth(_preds([1], f[1:]), 0.1).probs[0]
    keep = np.exp(-0.1 / 0.2)  # previous output's weight after a 0.1 s gap
    np.testing.assert_allclose(got, keep * first + (1 - keep) * second, atol=1e-6)


def test_runtime_module_does_not_import_torch() -> None:
    code = "import sys, fer_live.smooth.gus_t; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_smoother_table_loads_no_smoother() -> None:
    # the CLI reads it for --smooth's help and check: GUS-T (numba) loads only for a run
    code = (
        "import sys, fer_live.smooth.table as t; t.smoother_entry('graph'); "
        "assert not {'fer_live.smooth.gus_t', 'numba'} & set(sys.modules), 'a smoother loaded'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_auto_picks_graph_only_when_a_head_ships_beside_the_model(tmp_path: Path) -> None:
    # given one model with a matching head and one without
    with_head = tmp_path / "fer_a.onnx"
    with_head.write_bytes(b"model a")
    write_head(head_path_for(with_head), base_sha256=sha256_file(with_head))
    without = tmp_path / "fer_b.onnx"
    without.write_bytes(b"model b")
    # when / then
    assert isinstance(make_smoother("auto", model=with_head), GraphSmoother)
    assert isinstance(make_smoother("auto", model=without), EmaSmoother)
    assert isinstance(make_smoother("auto"), EmaSmoother)


def test_torchscript_twin_is_accepted_through_its_onnx_file(tmp_path: Path) -> None:
    # given a head recorded against the ONNX file, and the TorchScript export beside it
    onnx_file, ts_file = tmp_path / "fer_a.onnx", tmp_path / "fer_a.pt"
    onnx_file.write_bytes(b"onnx bytes")
    ts_file.write_bytes(b"torchscript bytes")
    write_head(head_path_for(onnx_file), base_sha256=sha256_file(onnx_file))
    # when / then: the .pt run finds the same head; a changed ONNX twin is refused
    assert isinstance(make_smoother("graph", model=ts_file), GraphSmoother)
    onnx_file.write_bytes(b"retrained")
    with pytest.raises(ModelError, match="another model"):
        make_smoother("graph", model=ts_file)


def _card(**kw: object) -> ModelCard:
    return ModelCard(name="m", labels=tuple("abcd"), input_size=32, embedding_dim=D, **kw)


def test_auto_needs_an_embedding_output_and_warns_on_a_missing_folded_head(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # given a model with a head beside it but no embedding output
    model = tmp_path / "fer_c.onnx"
    model.write_bytes(b"model c")
    write_head(head_path_for(model), base_sha256=sha256_file(model))
    no_embedding = replace(_card(), outputs=("logits",), embedding_dim=None)
    # when / then: EMA, since the head has nothing to read
    assert isinstance(make_smoother("auto", model=model, card=no_embedding), EmaSmoother)
    # given a card that names a folded head which did not ship
    folded = FoldedHead("fer_d.gus.npz", "a" * 64, "b" * 64, H)
    card = _card(outputs=("logits", "embedding", "gus_proj"), gus_head=folded)
    # when / then: EMA, and a warning that says why
    assert isinstance(make_smoother("auto", model=tmp_path / "fer_d.onnx", card=card), EmaSmoother)
    assert "no fer_d.gus.npz" in caplog.text


def test_auto_is_the_default_smoother() -> None:
    assert SmoothConfig().name == "auto"


def test_shipped_models_smooth_with_their_graph_heads() -> None:
    from fer_live.infer.assets import shipped_models

    # given every shipped model; when built as the pipeline builds it
    models = shipped_models()
    assert {"default", "accurate"} <= set(models)
    for path in models.values():
        smoother = make_smoother("auto", model=path)
        # then each ships its head, folded into the model
        assert isinstance(smoother, GraphSmoother), path
        card = card_beside(path)
        assert card is not None and card.gus_head is not None, path


@pytest.mark.parametrize("norm", ["mlgcn", "kipf"])
@pytest.mark.parametrize("decay", [None, 0.1])
def test_compiled_windows_equal_the_reference_graph_in_any_ring_order(
    tmp_path: Path, norm: str, decay: float | None
) -> None:
    # given K windows of different fill, each stored in a scrambled ring order, with stale
    # entries (random edges and projections) where no frame is
    weights = GusHeadWeights.load(write_head(tmp_path / "h.gus.npz", norm=norm, threshold=0.6))
    rng, n, k = np.random.default_rng(11), 6, 5
    feats = [_embeddings(m, seed) for seed, m in enumerate([1, 2, 4, 6, 6])]
    edges = rng.random((k, n, n)) < 0.5
    proj = rng.standard_normal((k, n, H)).astype(np.float32)
    valid = np.zeros((k, n), bool)
    times = rng.random((k, n))
    newest, expected = np.zeros(k, np.int64), []
    for i, f in enumerate(feats):
        order = rng.permutation(n)[: len(f)]  # ring entry of each frame, oldest first
        t = np.arange(len(f)) / 30
        w = None if decay is None else np.exp(-np.abs(t[:, None] - t[None, :]) / decay)
        unit = f / np.linalg.norm(f, axis=1, keepdims=True)
        a = unit @ unit.T > weights.threshold
        np.fill_diagonal(a, True)
        edges[i][np.ix_(order, order)] = a
        proj[i, order], valid[i, order], times[i, order] = weights.project(f), True, t
        newest[i] = order[-1]
        expected.append(weights.last_logits(unit.astype(np.float32), weights.project(f), w))
    # when
    feats = [
        newest_features(
            edges[i], proj[i], valid[i], times[i], int(newest[i]), weights.threshold,
            NORMS[norm], weights.p, decay or 0.0,
        )
        for i in range(k)
    ]  # fmt: skip
    got = np.stack(feats) @ weights.w2_fc + weights.fc_b
    # then
    np.testing.assert_allclose(got, np.stack(expected), atol=1e-4, rtol=0)


def test_many_tracks_at_once_equal_each_track_alone(head_file: Path) -> None:
    # given 12 tracks (more than the preallocated slots) that come and go
    rng = np.random.default_rng(4)
    ids = np.arange(12)
    feats = {int(i): _embeddings(40, 100 + int(i)) for i in ids}
    together = GraphSmoother(head=head_file, window=5)
    alone = {int(i): GraphSmoother(head=head_file, window=5) for i in ids}
    for t in range(40):
        present = [int(i) for i in ids if rng.random() < 0.8]  # gaps of a frame or two
        rows = np.stack([feats[i][t] for i in present]) if present else np.zeros((0, D))
        out = together.smooth(_preds(present, rows), t / 30)
        for j, i in enumerate(present):
            single = alone[i].smooth(_preds([i], feats[i][t : t + 1]), t / 30)
            np.testing.assert_allclose(out.probs[j], single.probs[0], atol=1e-5)


def test_folded_projection_equals_the_separate_one_and_a_wrong_one_is_refused(
    head_file: Path,
) -> None:
    # given the same frames with the projection from the model, and without it
    f = _embeddings(6, 8)
    folded, separate = GraphSmoother(head=head_file), GraphSmoother(head=head_file)
    w1 = folded.weights.w1
    for i in range(6):
        preds = _preds([1], f[i : i + 1])
        with_proj = replace(preds, projection=(f[i : i + 1] @ w1).astype(np.float32))
        # when / then
        a, b = folded.smooth(with_proj, i / 30), separate.smooth(preds, i / 30)
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-4, rtol=0)
    # a projection that is not f @ w1 (another head folded in) is a model error
    wrong = replace(_preds([2], f[:1]), projection=np.ones((1, H), np.float32))
    with pytest.raises(ModelError, match="gus_proj"):
        GraphSmoother(head=head_file).smooth(wrong, 0.0)


def test_track_lost_for_longer_than_the_gap_is_forgotten(head_file: Path) -> None:
    smoother = GraphSmoother(head=head_file, max_gap_s=0.5)
    f = _embeddings(3, 12)
    for i in range(3):
        smoother.smooth(_preds([4], f[i : i + 1]), i / 30)
    assert smoother.rings.length(4) == 3
    smoother.smooth(_preds([5], f[:1]), 2 / 30 + 0.6)  # another face, 0.6 s later
    assert 4 not in smoother.rings and smoother.rings.length(5) == 1


@pytest.mark.parametrize("base_weight", [0.0, 0.75, 2.0])
def test_output_adds_the_log_of_the_models_probabilities_averaged_over_linked_frames(
    head_file: Path, base_weight: float
) -> None:
    # given a window of frames of one face with the model's own probabilities, and one frame
    # of another face inside it that shares no edge with the newest one
    smoother = GraphSmoother(
        head=head_file, window=5, ema_s=0.0, base_weight=base_weight, reset_cos=-1.0
    )  # never restarts
    rng = np.random.default_rng(21)
    f = _embeddings(5, 5)
    f[2] = -f[2]  # cos < 0 with every other frame: not linked
    base = rng.dirichlet(np.ones(C), size=5).astype(np.float32)
    for i in range(5):
        preds = Predictions(np.array([3]), base[i : i + 1], f[i : i + 1].astype(np.float32))
        out = smoother.smooth(preds, i / 30)
    # then the newest row is softmax(head logits + w * log(mean base over the linked frames))
    unit = f / np.linalg.norm(f, axis=1, keepdims=True)
    linked = unit @ unit[-1] > smoother.weights.threshold
    assert not linked[2] and linked.sum() == 4
    z = smoother.weights.logits(f)[-1] + base_weight * np.log(base[linked].mean(axis=0))
    np.testing.assert_allclose(out.probs[0], np.exp(z) / np.exp(z).sum(), atol=1e-5)


def test_base_weight_out_of_range_or_wrong_class_count_is_refused(head_file: Path) -> None:
    with pytest.raises(ConfigError, match="base_weight"):
        GraphSmoother(head=head_file, base_weight=-0.5)
    smoother = GraphSmoother(head=head_file)
    wrong = Predictions(np.array([1]), np.full((1, C + 1), 0.2, np.float32), _embeddings(1, 0))
    with pytest.raises(ModelError, match="classes"):
        smoother.smooth(wrong, 0.0)
