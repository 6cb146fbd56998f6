"""Face or not, read off the expression model's own embedding: the still fallbacks' probe.

A still the detector misses may still be a face (a tight crop: a profile, a hand over the mouth, a
drawing) that neither MediaPipe model takes for one. The expression model was trained on such
crops, so its embedding (the ``embedding`` output, before the classifier) tells them from walls,
skies and textures. The probe is a logistic regression on that embedding: ``<model stem>.face.npz``
beside the model, made by ``benchmarks/face_probe.py`` (FERPlus Train crops against generated
non-face crops; the threshold chosen on FERPlus Valid and held-out non-faces). A model without one
(or without an ``embedding`` output) gets no probe, and its stills rely on the landmarker alone.
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_live.detect.models import sha256_file
from fer_live.errors import ModelError
from fer_live.infer.card import ModelCard
from fer_live.infer.safe_npz import read_npz

logger = logging.getLogger(__name__)

PROBE_SUFFIX = ".face.npz"
PROBE_FORMAT = 1
# The shipped probes' sha256, checked at load: a probe is tied to the model it was fitted on.
SHIPPED_PROBES = {
    "fer_default.face.npz": "1d5a0e759b33949b1779f89ac675b697448e0bcc500c4748a897938236120f76",
    "fer_accurate.face.npz": "4d3ec7ba8198d5f19e0d591beb8465b3dc64c01586017aafda6473ed9debf34b",
}
_MAX_PROBE_BYTES = 1 << 20  # per array; a probe is D + 1 floats


@dataclass(frozen=True)
class FaceProbe:
    """A logistic face/non-face probe on a model's embedding.

    Attributes:
        weight: (D,) weights on the raw embedding.
        bias: The logit's bias.
        threshold: The face probability at or above which a crop is a face.
        meta: Provenance (``base_sha256``: the model file it was fitted on, data, metrics).
    """

    weight: np.ndarray
    bias: float
    threshold: float
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.weight.ndim != 1 or not np.isfinite(self.weight).all():
            raise ModelError(f"face probe weight must be finite (D,), got {self.weight.shape}")
        if not 0.0 < self.threshold < 1.0:
            raise ModelError(f"face probe threshold must be in (0, 1), got {self.threshold}")

    @property
    def dim(self) -> int:
        return int(self.weight.shape[0])

    def face_prob(self, embedding: np.ndarray) -> np.ndarray:
        """Face probability (N,) of each embedding row (N, D)."""
        logit = embedding.astype(np.float64) @ self.weight + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(logit, -60.0, 60.0)))

    def is_face(self, embedding: np.ndarray) -> np.ndarray:
        """Whether each embedding row (N, D) is a face: bool (N,)."""
        return self.face_prob(embedding) >= self.threshold

    @staticmethod
    def load(path: Path) -> FaceProbe:
        """Read a ``.face.npz`` probe; a shipped one must match its known sha256.

        Raises:
            ModelError: Missing, corrupt (sha256 mismatch) or malformed file.
        """
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"face probe not found: {path}")
        expected = SHIPPED_PROBES.get(path.name)
        if expected is not None and sha256_file(path) != expected:
            raise ModelError(f"face probe {path} is corrupt (sha256 mismatch)")
        arrays = read_npz(path, ("weight", "bias", "threshold", "meta"), _MAX_PROBE_BYTES)
        try:
            meta = json.loads(str(arrays["meta"]))
            bias, threshold = float(arrays["bias"]), float(arrays["threshold"])
        except (ValueError, TypeError) as exc:
            raise ModelError(f"face probe {path} is malformed: {exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != PROBE_FORMAT:
            raise ModelError(f"face probe {path} is not format {PROBE_FORMAT}")
        return FaceProbe(np.asarray(arrays["weight"], np.float64), bias, threshold, meta)


def probe_path_for(model_path: Path) -> Path:
    """``weights/fer_default.onnx`` -> ``weights/fer_default.face.npz``."""
    return model_path.with_name(model_path.name.split(".")[0] + PROBE_SUFFIX)


def probe_for(model_path: Path, card: ModelCard) -> FaceProbe | None:
    """The probe beside ``model_path``, checked against the model, or None when it has none.

    Raises:
        ModelError: The probe is corrupt or malformed, or was fitted on another model.
    """
    path = probe_path_for(Path(model_path))
    if card.embedding_dim is None or not path.is_file():
        return None
    probe = FaceProbe.load(path)
    if probe.dim != card.embedding_dim:
        raise ModelError(
            f"face probe {path.name} reads {probe.dim} values, {model_path.name} embeds "
            f"{card.embedding_dim}"
        )
    # The TorchScript file is exported with the ONNX one from the same checkpoint, and the
    # probe records the ONNX file's hash: either file identifies the model.
    base = probe.meta.get("base_sha256")
    files = [p for p in (Path(model_path), Path(model_path).with_suffix(".onnx")) if p.is_file()]
    if base and files and all(sha256_file(p) != base for p in files):
        raise ModelError(f"face probe {path.name} was fitted on another model than {model_path}")
    logger.info("face probe %s (threshold %.3f)", path, probe.threshold)
    return probe


def write_probe(path: Path, weight: np.ndarray, bias: float, threshold: float, **meta: Any) -> Path:
    """Write a ``.face.npz`` probe that ``FaceProbe.load`` reads; ``meta`` is provenance.

    The archive's entries carry a fixed date, so the same probe always gives the same bytes (and
    sha256): ``np.savez`` stamps the time of writing.
    """
    info = dict(meta, format=PROBE_FORMAT)
    arrays: dict[str, np.ndarray] = {
        "weight": np.asarray(weight, np.float32),
        "bias": np.array(bias, np.float64),
        "threshold": np.array(threshold, np.float64),
        "meta": np.array(json.dumps(info, sort_keys=True)),
    }
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(entry, "w") as handle:
                np.lib.format.write_array(handle, array, allow_pickle=False)
    return path
