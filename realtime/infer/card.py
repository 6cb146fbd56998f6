"""The model card: everything needed to feed a model and read its outputs.

A card travels with every weight file: embedded in ONNX metadata (key ``fer_live_card``) and the
TorchScript extra files (``card.json``), and written beside the file as ``<stem>.json``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from fer_live.detect.models import sha256_file
from fer_live.errors import ModelError
from fer_live.infer.decision import DecisionRule
from fer_live.infer.json_checks import exceeds_depth, has_non_finite, is_int, is_number, short

logger = logging.getLogger(__name__)

CARD_KEY = "fer_live_card"
FORMAT_VERSION = 1
KNOWN_OUTPUTS = ("logits", "embedding", "gus_proj")
_MAX_CARD_BYTES = 1 << 20  # a card is a few KB; a bigger file is not one
_MAX_LIST = 1000


@dataclass(frozen=True)
class CropFraming:
    """How to cut the model's square input around a detector box.

    With the box centre (cx, cy) and size s = (w + h) / 2, the crop is the square of side
    ``scale * s`` centred at (cx + shift_x * s, cy + shift_y * s). The numbers are measured by
    running the detector on training images (see ``benchmarks/crop_framing.py``).
    """

    scale: float = 1.0
    shift_x: float = 0.0
    shift_y: float = 0.0
    detector: str = "blaze_face_short_range"

    def __post_init__(self) -> None:
        if not 0.5 <= self.scale <= 3.0:
            raise ModelError(f"crop.scale must be in [0.5, 3.0], got {self.scale}")
        if abs(self.shift_x) > 0.5 or abs(self.shift_y) > 0.5:
            shift = (self.shift_x, self.shift_y)
            raise ModelError(f"crop shift must be within ±0.5, got {shift}")


@dataclass(frozen=True)
class FoldedHead:
    """The GUS-T head whose first-layer projection the model outputs as ``gus_proj``.

    ``gus_proj = embedding @ w1`` of that head, computed inside the model so the smoother only
    runs the small graph part. The head records the model it was trained on (``base_sha256``);
    folding changes the model file, so the card carries that link and the head file's hash.

    Attributes:
        file: The head file's name (``<stem>.gus.npz`` beside the model).
        sha256: The head file's sha256.
        base_sha256: sha256 of the model file the head was trained on, before folding.
        dim: H, the width of ``gus_proj``.
    """

    file: str
    sha256: str
    base_sha256: str
    dim: int

    def __post_init__(self) -> None:
        if not self.file or Path(self.file).name != self.file:
            raise ModelError(f"card gus_head.file must be a file name, got {short(self.file)}")
        for key in ("sha256", "base_sha256"):
            value = getattr(self, key)
            if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
                raise ModelError(f"card gus_head.{key} must be a sha256 hex digest")
        if not 0 < self.dim < 1 << 16:
            raise ModelError(f"card gus_head.dim must be in [1, 65535], got {self.dim}")


@dataclass(frozen=True)
class ModelCard:
    """Metadata that makes a model file self-describing.

    Attributes:
        name: Model name, e.g. ``fer_mobilenetv2_64``.
        labels: Class names in logit order.
        input_size: Side of the square input in pixels.
        channels: 1 for grayscale input, 3 for RGB.
        mean: Per-channel mean on the 0..1 pixel scale.
        std: Per-channel std on the 0..1 pixel scale.
        crop: Crop framing relative to the detector box.
        outputs: Output names in order; always starts with ``logits``.
        embedding_dim: Size of the ``embedding`` output, or None when absent.
        arch: Registry name of the architecture.
        training: Free-form provenance (data, recipe, command).
        metrics: Evaluation results, e.g. ``{"ferplus_test_acc": 0.85}``.
        decision: How logits become the probabilities users see (temperature, class offsets).
        gus_head: The GUS-T head folded in as the ``gus_proj`` output, or None when absent.
    """

    name: str
    labels: tuple[str, ...]
    input_size: int
    channels: int = 1
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    crop: CropFraming = field(default_factory=CropFraming)
    outputs: tuple[str, ...] = ("logits", "embedding")
    embedding_dim: int | None = None
    arch: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    decision: DecisionRule = field(default_factory=DecisionRule)
    gus_head: FoldedHead | None = None
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if not self.labels or len(set(self.labels)) != len(self.labels):
            raise ModelError(f"card labels must be non-empty and unique, got {short(self.labels)}")
        if not 16 <= self.input_size <= 512:
            raise ModelError(f"card input_size must be in [16, 512], got {self.input_size}")
        if self.channels not in (1, 3):
            raise ModelError(f"card channels must be 1 or 3, got {self.channels}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ModelError(
                f"card mean/std need {self.channels} values, got {len(self.mean)}/{len(self.std)}"
            )
        if any(s <= 0 for s in self.std):
            raise ModelError(f"card std must be positive, got {short(self.std)}")
        if (
            not self.outputs
            or self.outputs[0] != "logits"
            or not set(self.outputs) <= set(KNOWN_OUTPUTS)
        ):
            raise ModelError(f"card outputs must start with 'logits', got {short(self.outputs)}")
        if ("embedding" in self.outputs) != (self.embedding_dim is not None):
            raise ModelError("card embedding_dim must be set exactly when 'embedding' is an output")
        if ("gus_proj" in self.outputs) != (self.gus_head is not None):
            raise ModelError("card gus_head must be set exactly when 'gus_proj' is an output")
        if self.gus_head is not None and "embedding" not in self.outputs:
            raise ModelError("card output 'gus_proj' needs the 'embedding' output too")
        self.decision.check_classes(self.num_classes)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ModelCard:
        """Build a card from its JSON object, checking every field's type first.

        Raises:
            ModelError: Not an object, an unknown or missing key, a wrong type or a bad value.
        """
        if not isinstance(data, dict):
            raise ModelError("model card must be a JSON object")
        data = dict(data)
        version = data.get("format_version", FORMAT_VERSION)
        if not is_int(version) or version != FORMAT_VERSION:
            raise ModelError(f"card format_version {short(version)} is not supported")
        _check_card_types(data)
        data["crop"] = _crop_from_dict(data.get("crop", {}))
        data["decision"] = DecisionRule.from_dict(data.get("decision"))
        data["gus_head"] = _folded_from_dict(data.get("gus_head"))
        for key in ("labels", "outputs"):
            if key in data:
                data[key] = tuple(data[key])
        for key in ("mean", "std"):
            if key in data:
                data[key] = tuple(float(v) for v in data[key])
        try:
            return ModelCard(**data)
        except TypeError as exc:  # a required key is missing
            raise ModelError(f"model card is malformed: {exc}") from None

    @staticmethod
    def from_json(text: str) -> ModelCard:
        """Parse a card from JSON text.

        Raises:
            ModelError: The text is not JSON, not an object, or not a valid card.
        """
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, huge ints, deep nesting
            raise ModelError(f"model card is not valid JSON: {short(str(exc), 200)}") from None
        if not isinstance(data, dict):
            raise ModelError("model card must be a JSON object")
        return ModelCard.from_dict(data)


_CARD_KEYS = frozenset(f.name for f in fields(ModelCard))
_CROP_KEYS = frozenset(f.name for f in fields(CropFraming))


def _is_provenance(value: Any) -> bool:
    return isinstance(value, dict) and not exceeds_depth(value) and not has_non_finite(value)


_TYPE_CHECKS: dict[str, tuple[Any, str]] = {
    "name": (lambda v: isinstance(v, str), "a string"),
    "arch": (lambda v: isinstance(v, str), "a string"),
    "labels": (lambda v: _list_of(v, lambda x: isinstance(x, str)), "a list of strings"),
    "outputs": (lambda v: _list_of(v, lambda x: isinstance(x, str)), "a list of strings"),
    "mean": (lambda v: _list_of(v, is_number), "a list of finite numbers"),
    "std": (lambda v: _list_of(v, is_number), "a list of finite numbers"),
    "input_size": (is_int, "an integer"),
    "channels": (is_int, "an integer"),
    "embedding_dim": (lambda v: v is None or (is_int(v) and 0 < v < 1 << 20), "null or > 0"),
    "training": (_is_provenance, "a shallow object without NaN or infinity"),
    "metrics": (_is_provenance, "a shallow object without NaN or infinity"),
}


def _list_of(value: Any, check: Any) -> bool:
    return isinstance(value, list) and len(value) <= _MAX_LIST and all(check(v) for v in value)


def _check_card_types(data: dict[str, Any]) -> None:
    """Raise ModelError for an unknown key or a value of the wrong JSON type."""
    unknown = sorted(str(key) for key in set(data) - _CARD_KEYS)
    if unknown:
        raise ModelError(f"model card is malformed: unknown key {short(unknown[0])}")
    for key, (check, wanted) in _TYPE_CHECKS.items():
        if key in data and not check(data[key]):
            raise ModelError(f"card {key} must be {wanted}, got {short(data[key])}")


def _crop_from_dict(data: Any) -> CropFraming:
    if not isinstance(data, dict):
        raise ModelError(f"card crop must be a JSON object, got {short(data)}")
    unknown = sorted(str(key) for key in set(data) - _CROP_KEYS)
    if unknown:
        raise ModelError(f"card crop is malformed: unknown key {short(unknown[0])}")
    for key in ("scale", "shift_x", "shift_y"):
        if key in data and not is_number(data[key]):
            raise ModelError(f"card crop.{key} must be a finite number, got {short(data[key])}")
    if not isinstance(data.get("detector", ""), str):
        raise ModelError(f"card crop.detector must be a string, got {short(data['detector'])}")
    return CropFraming(**data)


_FOLDED_KEYS = {"file": str, "sha256": str, "base_sha256": str, "dim": int}


def _folded_from_dict(data: Any) -> FoldedHead | None:
    if data is None:
        return None
    if not isinstance(data, dict) or set(data) != set(_FOLDED_KEYS):
        raise ModelError(f"card gus_head must be an object with keys {sorted(_FOLDED_KEYS)}")
    for key, kind in _FOLDED_KEYS.items():
        if not (is_int(data[key]) if kind is int else isinstance(data[key], str)):
            raise ModelError(f"card gus_head.{key} must be {kind.__name__}, got {short(data[key])}")
    return FoldedHead(**data)


def sidecar_path(model_path: Path) -> Path:
    return model_path.with_suffix(".json")


def write_sidecar(card: ModelCard, model_path: Path) -> Path:
    """Write ``<stem>.json`` beside the model: the card plus the model file's sha256."""
    data = json.loads(card.to_json())
    data["sha256"] = sha256_file(model_path)
    data["file"] = model_path.name
    path = sidecar_path(model_path)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def read_sidecar(model_path: Path, require_sha: bool = False) -> ModelCard | None:
    """Read and verify ``<stem>.json`` if present; None if there is none.

    The sidecar beside a model is its card, whatever its ``file`` field says, unless that names
    a file of another format: ``model.onnx`` and ``model.pt`` share ``model.json``, which
    describes the ONNX file, so it is not the ``.pt``'s. A pair renamed together
    (``other.onnx`` with ``other.json`` still naming ``fer_default.onnx``) is accepted when
    the sha256 matches; it must be there.

    ``require_sha``: a sidecar without the model's sha256 is an error (model loading).

    Raises:
        ModelError: The sidecar is unreadable, too large, malformed, or its sha256 does not match
            the model file (or is missing for a renamed pair).
    """
    path = sidecar_path(model_path)
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as handle:
            raw = handle.read(_MAX_CARD_BYTES + 1)
        if len(raw) > _MAX_CARD_BYTES:
            raise ModelError(f"model card {path} is over {_MAX_CARD_BYTES} bytes: not a card")
        data = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # incl. UnicodeDecodeError
        raise ModelError(f"cannot read model card {path}: {short(str(exc), 200)}") from None
    if not isinstance(data, dict):
        raise ModelError(f"model card {path} must be a JSON object")
    expected = data.pop("sha256", None)
    described = data.pop("file", None)
    renamed = isinstance(described, str) and described != model_path.name
    if renamed and Path(described).suffix.lower() != model_path.suffix.lower():
        return None  # the twin's sidecar (model.onnx and model.pt share model.json)
    named = f" (it describes {short(described)})" if renamed else ""
    if expected is None and (require_sha or renamed):
        raise ModelError(f"model card {path} has no sha256 of {model_path.name}{named}")
    if expected is not None and expected != _sha256_or_error(model_path):
        raise ModelError(f"{model_path} does not match the sha256 in {path.name}{named}")
    if renamed:
        logger.info(
            "%s: card %s names %s; same sha256, a renamed copy", model_path, path.name, described
        )
    try:
        return ModelCard.from_dict(data)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from None


def _sha256_or_error(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror or exc}") from None


def resolve_card(model_path: Path, embedded: ModelCard | None, where: str) -> ModelCard:
    """The card of a model file: the embedded one, checked against its sidecar, or the sidecar.

    A sidecar beside the model is always verified (sha256, fields), even when the file embeds a
    card: a sidecar that no longer matches means the file beside it was swapped or edited.

    Args:
        model_path: The model file.
        embedded: The card read from the file itself, or None.
        where: Where an embedded card would be (for the error message).

    Raises:
        ModelError: No card at all, a sidecar that fails its checks, or one that disagrees with
            the embedded card.
    """
    sidecar = read_sidecar(model_path, require_sha=True)
    if embedded is not None and sidecar is not None and sidecar != embedded:
        raise ModelError(
            f"{model_path}: its sidecar {sidecar_path(model_path).name} disagrees with the card "
            "embedded in the file; re-export the model or remove the stale sidecar"
        )
    card = embedded or sidecar
    if card is None:
        raise ModelError(
            f"{model_path} has no model card (no {where} and no {sidecar_path(model_path).name})"
        )
    return card
