"""AU pseudo-labels: blendshape -> AU mapping, EMFACS fallback, the real FaceLandmarker cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fer_live.errors import ConfigError
from fer_live.trainer.data.ferplus import FERPLUS_LABELS
from fer_live.trainer.methods.au_labels import (
    AU_BLENDSHAPES,
    AU_LIST,
    BLENDSHAPES,
    AuCache,
    au_targets,
    au_thresholds,
    blendshapes_to_au,
    build_au_cache,
    default_cache_path,
    load_au_cache,
    prototype_matrix,
)

pytest.importorskip("mediapipe")


def _scores(**named: float) -> np.ndarray:
    row = np.zeros((1, len(BLENDSHAPES)), np.float32)
    for name, value in named.items():
        row[0, BLENDSHAPES.index(name)] = value
    return row


def _au(row: np.ndarray, au: int) -> float:
    return float(row[0, AU_LIST.index(au)])


@pytest.fixture(scope="module")
def au_cache(tmp_path_factory: pytest.TempPathFactory, ferplus_root: Path) -> Path:
    """FaceLandmarker over the first 96 real FERPlus train images."""
    return build_au_cache(ferplus_root, "train", cache_dir=tmp_path_factory.mktemp("au"), limit=96)


def test_mapping_names_every_spec_au_with_real_blendshapes() -> None:
    # AU25 is derived; every other spec AU maps to blendshapes the landmarker outputs
    assert set(AU_BLENDSHAPES) | {25} == set(AU_LIST)
    assert all(name in BLENDSHAPES for names in AU_BLENDSHAPES.values() for name in names)
    assert len(BLENDSHAPES) == 52 and BLENDSHAPES[0] == "_neutral"


@pytest.mark.parametrize(
    ("named", "gap", "au", "expected"),
    [
        ({"mouthSmileLeft": 0.2, "mouthSmileRight": 0.8}, 0.0, 12, 0.8),  # max of L/R
        ({"browInnerUp": 0.4}, 0.0, 1, 0.4),
        ({"browOuterUpLeft": 0.7}, 0.0, 2, 0.7),
        ({"mouthPressRight": 0.6}, 0.0, 23, 0.6),  # the AU24 blendshape as AU23 proxy
        ({"mouthRollUpper": 0.3, "mouthRollLower": 0.5}, 0.0, 28, 0.5),
        ({"mouthShrugLower": 0.45, "mouthShrugUpper": 0.9}, 0.0, 17, 0.45),
        ({"jawOpen": 0.5, "mouthClose": 0.1}, 0.0, 25, 1.0),  # lips apart by the jaw rule
        ({"jawOpen": 0.5, "mouthClose": 0.5}, 0.0, 25, 0.0),  # jaw open, lips closed
        ({"jawOpen": 0.05}, 0.06, 25, 1.0),  # lips apart by the landmark gap
        ({"jawOpen": 0.05}, 0.01, 25, 0.0),
        ({"jawOpen": 0.3}, 0.0, 26, 0.3),
    ],
)
def test_blendshapes_to_au(named: dict, gap: float, au: int, expected: float) -> None:
    out = blendshapes_to_au(_scores(**named), np.array([gap], np.float32))
    assert _au(out, au) == pytest.approx(expected)


def test_thresholds_are_lower_for_subtle_aus() -> None:
    thresholds = dict(zip(AU_LIST, au_thresholds().tolist(), strict=True))
    assert thresholds[1] == pytest.approx(0.3) and thresholds[12] == pytest.approx(0.5)


def test_emfacs_prototypes_on_the_17_au_list() -> None:
    proto = prototype_matrix(FERPLUS_LABELS)
    on = {c: {au for au, v in zip(AU_LIST, row, strict=True) if v} for c, row in
          zip(FERPLUS_LABELS, proto, strict=True)}  # fmt: skip
    assert on["happiness"] == {6, 12} and on["neutral"] == set()
    assert on["disgust"] == {9, 10, 15}  # AU16 -> AU10 proxy
    with pytest.raises(ConfigError, match="EMFACS"):
        prototype_matrix(("joy",))


def test_fallback_uses_the_training_labels_only_where_no_mesh() -> None:
    # given two images: a smiling one with a mesh, one without a mesh
    blend = np.concatenate([_scores(mouthSmileLeft=0.9), _scores()])
    cache = AuCache(np.array(["a", "b"]), np.array([1, 0]), blend, np.zeros(2, np.float32),
                    np.array([True, False]), "sha")  # fmt: skip
    # when the training (noisy) labels say surprise for both
    z = au_targets(cache, np.array([2, 2]), FERPLUS_LABELS)
    # then the mesh image keeps its detector AUs and the other gets the surprise prototype
    assert _au(z[:1], 12) == 1.0 and _au(z[:1], 26) == 0.0
    assert {au for au, v in zip(AU_LIST, z[1], strict=True) if v} == {1, 2, 5, 26}
    soft = au_targets(cache, np.array([2, 2]), FERPLUS_LABELS, soft=True, prior_mix=0.5)
    assert _au(soft[:1], 12) == pytest.approx(0.45) and _au(soft[:1], 1) == pytest.approx(0.5)


def test_cache_of_real_images_has_meshes_and_a_smile_signal(au_cache: Path) -> None:
    # given the cache of 96 real 48 px FERPlus images
    cache = load_au_cache(au_cache)
    assert len(cache.found) == 96 and cache.coverage() >= 0.85
    assert np.all(cache.blendshapes[~cache.found] == 0)
    # then AU12 (smile) is far stronger on happy faces than on neutral ones
    au = blendshapes_to_au(cache.blendshapes, cache.lip_gap)[:, AU_LIST.index(12)]
    happy = cache.found & (cache.labels == FERPLUS_LABELS.index("happiness"))
    neutral = cache.found & (cache.labels == FERPLUS_LABELS.index("neutral"))
    assert happy.sum() >= 5 and neutral.sum() >= 5
    assert au[happy].mean() > 0.3 > 0.1 > au[neutral].mean()


def test_cache_path_is_keyed_by_split_and_model_sha(tmp_path: Path) -> None:
    model = tmp_path / "m.task"
    model.write_bytes(b"one")
    first = default_cache_path("train", model, tmp_path)
    assert first != default_cache_path("valid", model, tmp_path)
    model.write_bytes(b"two")
    assert first != default_cache_path("train", model, tmp_path)
    assert default_cache_path("train", model, tmp_path, limit=9).name.endswith("-first9.npz")


def test_missing_cache_names_the_build_command(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fer-train methods au-labels"):
        load_au_cache(tmp_path / "none.npz")


def test_cli_builds_a_cache(tmp_path: Path, ferplus_root: Path) -> None:
    from fer_live.trainer.cli import app

    args = ["methods", "au-labels", "--limit", "4", "--cache-dir", str(tmp_path),
            "--data-root", str(ferplus_root)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (path,) = tmp_path.glob("au-train-*-first4.npz")
    assert len(load_au_cache(path).found) == 4
