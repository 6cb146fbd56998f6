"""GUS-T's head: the trained graph layers, their numpy operators, the head file (METHODS §2.3).

The GUS graph over a window of one face's frames: binarized cosine similarity above a
threshold, unit diagonal, optional time decay, normalized with the operator the head was trained
with; two trained GUS layers and the classifier give the newest frame's logits. The smoother
that keeps the windows is ``fer_live.smooth.gus_t``; the reference operators here (one graph
at a time) and its compiled hot path (``fer_live.smooth.gus_kernel``) agree, and the tests check
both against each other and against the torch training code.

The head (``<model stem>.gus.npz``, written by ``fer_live.trainer.methods.gus.save_gus_head``) is
found beside the model file. Its first layer's projection ``f W1`` can be folded into the model as
the ``gus_proj`` output (``fer_live.trainer.fold_gus``); the card then records the head
(``gus_head``).
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fer_live.detect.models import sha256_file
from fer_live.errors import ModelError
from fer_live.infer.card import FoldedHead, ModelCard
from fer_live.infer.json_checks import is_number, short
from fer_live.infer.safe_npz import read_npz

logger = logging.getLogger(__name__)

GUS_FORMAT = "fer_live_gus_v1"
HEAD_SUFFIX = ".gus.npz"
_HEAD_ARRAYS = ("w1", "w2", "fc_w", "fc_b")
_MAX_HEAD_BYTES = 256 << 20  # per array; a real head is about 1 MB


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` (N, D) scaled to unit L2 norm (zero rows stay zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def threshold_adjacency(
    unit: np.ndarray, threshold: float, weights: np.ndarray | None = None
) -> np.ndarray:
    """``A = 1[cos > threshold] * weights`` over unit rows (N, D), with a unit diagonal."""
    adj = (unit @ unit.T > threshold).astype(np.float32)
    if weights is not None:
        adj *= weights
    np.fill_diagonal(adj, 1.0)
    return adj


def kipf_norm(adj: np.ndarray) -> np.ndarray:
    """``D̃^-1/2 (A + I) D̃^-1/2`` with degrees from A + I."""
    tilde = adj + np.eye(adj.shape[0], dtype=adj.dtype)
    inv_sqrt = tilde.sum(axis=1) ** -0.5
    return inv_sqrt[:, None] * tilde * inv_sqrt[None, :]


def mlgcn_norm(adj: np.ndarray, p: float = 0.5) -> np.ndarray:
    """ML-GCN operator: ``A' = pA/(colsum + 1e-6)``, ``Ã = A' + I``, ``D^-1/2 Ã^T D^-1/2``."""
    tilde = p * adj / (adj.sum(axis=0, keepdims=True) + 1e-6)
    tilde = tilde + np.eye(adj.shape[0], dtype=adj.dtype)
    inv_sqrt = tilde.sum(axis=1) ** -0.5
    return inv_sqrt[:, None] * tilde.T * inv_sqrt[None, :]


def normalize_adjacency(adj: np.ndarray, norm: str, p: float = 0.5) -> np.ndarray:
    """Apply the named operator (``mlgcn`` or ``kipf``)."""
    if norm == "mlgcn":
        return mlgcn_norm(adj, p)
    if norm == "kipf":
        return kipf_norm(adj)
    raise ModelError(f"unknown graph norm {norm!r} in GUS head")


def _leaky(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, 0.2 * x)


@dataclass(frozen=True)
class GusHeadWeights:
    """A trained GUS head: two graph layers (D -> H -> H) and a classifier (H -> C).

    Attributes:
        w1: (D, H) first layer weight.
        w2: (H, H) second layer weight.
        fc_w: (C, H) classifier weight.
        fc_b: (C,) classifier bias.
        norm: Graph operator (``mlgcn`` or ``kipf``).
        p: ML-GCN factor.
        threshold: Cosine threshold at inference.
        meta: Provenance (base model name and sha256, labels, metrics).
    """

    w1: np.ndarray
    w2: np.ndarray
    fc_w: np.ndarray
    fc_b: np.ndarray
    norm: str = "mlgcn"
    p: float = 0.5
    threshold: float = 0.5
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def embedding_dim(self) -> int:
        return int(self.w1.shape[0])

    @property
    def hidden_dim(self) -> int:
        return int(self.w1.shape[1])

    @staticmethod
    def load(path: Path) -> GusHeadWeights:
        """Read a ``.gus.npz`` head.

        Raises:
            ModelError: Missing or malformed file.
        """
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"GUS head not found: {path} (make it: fer-train methods gus-head)")
        arrays = read_npz(path, (*_HEAD_ARRAYS, "meta"), max_bytes=_MAX_HEAD_BYTES)
        meta = _head_meta(path, arrays.pop("meta"))
        return GusHeadWeights(
            **_head_arrays(path, arrays), norm=meta["norm"], p=float(meta["p"]),
            threshold=float(meta["threshold"]), meta=meta,
        )  # fmt: skip

    def project(self, embedding: np.ndarray) -> np.ndarray:
        """First-layer projection ``f W1`` (..., H), cached per frame by the smoother."""
        return embedding @ self.w1

    def logits(self, feats: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Logits (N, C) of every node of one graph over ``feats`` (N, D)."""
        h1 = self._layer1(unit_rows(feats), self.project(feats), weights)
        adj = normalize_adjacency(
            threshold_adjacency(unit_rows(h1), self.threshold, weights), self.norm, self.p
        )
        return (adj @ h1 @ self.w2) @ self.fc_w.T + self.fc_b

    def last_logits(
        self, unit: np.ndarray, proj: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """Logits (C,) of the newest node only, from cached unit embeddings and projections."""
        h1 = self._layer1(unit, proj, weights)
        adj = threshold_adjacency(unit_rows(h1), self.threshold, weights)
        row = normalize_adjacency(adj, self.norm, self.p)[-1]
        return ((row @ h1) @ self.w2) @ self.fc_w.T + self.fc_b

    @functools.cached_property
    def w2_fc(self) -> np.ndarray:
        """``w2 @ fc_w.T`` (H, C): GUS2 has no activation, so it folds into the classifier."""
        return self.w2 @ self.fc_w.T

    def _layer1(self, unit: np.ndarray, proj: np.ndarray, weights: np.ndarray | None):  # noqa: ANN202
        adj = threshold_adjacency(unit, self.threshold, weights)
        return _leaky(normalize_adjacency(adj, self.norm, self.p) @ proj)


def write_head_file(
    path: Path, arrays: dict[str, np.ndarray], norm: str, p: float, threshold: float,
    **meta: Any,
) -> Path:  # fmt: skip
    """Write a ``.gus.npz`` head (``w1``, ``w2``, ``fc_w``, ``fc_b``) that ``GusHeadWeights.load``
    reads; ``meta`` is provenance (``base_sha256``, ``labels``, metrics...)."""
    info = dict(meta, format=GUS_FORMAT, norm=norm, p=p, threshold=threshold)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        np.savez(
            handle,
            w1=np.asarray(arrays["w1"], np.float32),
            w2=np.asarray(arrays["w2"], np.float32),
            fc_w=np.asarray(arrays["fc_w"], np.float32),
            fc_b=np.asarray(arrays["fc_b"], np.float32),
            meta=np.array(json.dumps(info, sort_keys=True)),
        )
    return path


def head_path_for(model_path: Path) -> Path:
    """``weights/fer_default.onnx`` -> ``weights/fer_default.gus.npz``."""
    return model_path.with_name(model_path.name.split(".")[0] + HEAD_SUFFIX)


def load_head(
    head: str | Path | None, model: str | Path | None, card: ModelCard | None = None
) -> GusHeadWeights:
    """Load the head and check it belongs to the model (when both are known).

    A model whose card declares a folded head (``gus_head``) must come with exactly that head
    file, trained on the model it was folded from; otherwise the head's recorded model hash must
    match the model file (or its ONNX twin).

    Raises:
        ModelError: A missing or malformed head, or one trained for another model.
    """
    if model is None:
        from fer_live.infer.assets import default_model_path

        model = default_model_path()
    model = Path(model)
    path = Path(head) if head is not None else head_path_for(model)
    weights = GusHeadWeights.load(path)
    folded = card.gus_head if card is not None else None
    if folded is not None:
        _check_folded(path, weights, folded, model)
    else:
        _check_base(path, weights, model)
    logger.info("GUS-T head %s (%s, t=%.2f)", path, weights.norm, weights.threshold)
    return weights


def _check_folded(path: Path, weights: GusHeadWeights, folded: FoldedHead, model: Path) -> None:
    if sha256_file(path) != folded.sha256:
        raise ModelError(
            f"GUS head {path.name} is not the head folded into {model} ({folded.file}); "
            "fold it again: fer-train fold-gus"
        )
    if weights.meta.get("base_sha256", folded.base_sha256) != folded.base_sha256:
        raise ModelError(f"GUS head {path.name} was trained for another model than {model}")
    if folded.dim != weights.hidden_dim:
        raise ModelError(
            f"{model}: gus_proj has {folded.dim} values, the head {weights.hidden_dim}"
        )


def _check_base(path: Path, weights: GusHeadWeights, model: Path) -> None:
    expected = weights.meta.get("base_sha256")
    # The TorchScript file is exported with the ONNX one from the same checkpoint; the head
    # records the ONNX file's hash, so either file identifies the base model.
    exported = [p for p in (model, model.with_suffix(".onnx")) if p.is_file()]
    if expected and exported and all(sha256_file(p) != expected for p in exported):
        raise ModelError(f"GUS head {path.name} was trained for another model than {model}")


def _head_meta(path: Path, meta: np.ndarray) -> dict[str, Any]:
    """The head's JSON provenance, with ``format``, ``norm``, ``p`` and ``threshold`` checked."""
    if meta.dtype.kind != "U" or meta.shape != ():
        raise ModelError(f"{path}: GUS head 'meta' must be one JSON string")
    try:
        info = json.loads(str(meta))
    except (ValueError, RecursionError) as exc:
        raise ModelError(
            f"{path}: GUS head meta is not valid JSON: {short(str(exc), 200)}"
        ) from None
    if not isinstance(info, dict) or info.get("format") != GUS_FORMAT:
        found = info.get("format") if isinstance(info, dict) else info
        raise ModelError(f"{path} has format {short(found)}, expected {GUS_FORMAT}")
    if info.get("norm") not in ("mlgcn", "kipf"):
        raise ModelError(f"{path}: unknown graph norm {short(info.get('norm'))} in GUS head")
    for key in ("p", "threshold"):
        if not is_number(info.get(key)):
            raise ModelError(f"{path}: GUS head {key} must be a finite number")
    if not isinstance(info.get("base_sha256", ""), str):
        raise ModelError(f"{path}: GUS head base_sha256 must be a string")
    return info


def _head_arrays(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """float32 copies of w1 (D, H), w2 (H, H), fc_w (C, H), fc_b (C,), checked for shape."""
    for name, array in arrays.items():
        if array.dtype.kind != "f":
            raise ModelError(f"{path}: GUS head {name} must be floating point, is {array.dtype}")
    w1, fc_w = arrays["w1"], arrays["fc_w"]
    ok = w1.ndim == 2 and fc_w.ndim == 2 and min(w1.shape) > 0 and min(fc_w.shape) > 0
    if ok:
        hidden, classes = w1.shape[1], fc_w.shape[0]
        expected = {"w2": (hidden, hidden), "fc_w": (classes, hidden), "fc_b": (classes,)}
        ok = all(arrays[name].shape == shape for name, shape in expected.items())
    if not ok:
        shapes = ", ".join(f"{name} {arrays[name].shape}" for name in _HEAD_ARRAYS)
        raise ModelError(f"{path}: GUS head shapes must be (D, H), (H, H), (C, H), (C,): {shapes}")
    out = {name: np.array(array, np.float32) for name, array in arrays.items()}
    if not all(np.all(np.isfinite(array)) for array in out.values()):
        raise ModelError(f"{path}: GUS head weights must be finite")
    return out


def _with_threshold(weights: GusHeadWeights, threshold: float) -> GusHeadWeights:
    return replace(weights, threshold=float(threshold))
