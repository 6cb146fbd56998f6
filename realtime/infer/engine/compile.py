"""``fer-live compile``: ONNX -> TensorRT engine, through a cache so later runs only load.

An engine only runs on the GPU generation and TensorRT version it was built for, so the cache
key is the model file's sha256, the target compute capability, the TensorRT library and
version, the precision and the batch profile (``cache_key``). The cache folder is
``$FER_LIVE_CACHE`` or ``~/.cache/fer-live/engines``; each engine is a fer-live engine file
(``fer_live.infer.engine.file``: card + build facts + plan) with a ``<stem>.json`` sidecar card.

Example:
    >>> result = compile_engine(Path("weights/fer_default.onnx"))  # doctest: +SKIP
    >>> result.path, result.built  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_live.detect.models import sha256_file
from fer_live.errors import BackendUnavailable, ConfigError, ModelError
from fer_live.infer.card import CARD_KEY, ModelCard, resolve_card
from fer_live.infer.engine.build import (
    BuildSpec,
    build_plan,
    inspect_plan,
    make_calibrator,
    precision_counts,
    supports_int8,
)
from fer_live.infer.engine.file import read_engine, write_engine
from fer_live.infer.engine.onnx_fp16 import import_onnx, to_fp16
from fer_live.infer.engine.trt_lib import TrtLib, import_tensorrt
from fer_live.infer.preprocess import to_model_input
from fer_live.types import CUDA

logger = logging.getLogger(__name__)

PRECISIONS = ("fp16", "fp32", "int8")
DEFAULT_BATCH_SIZES = (1, 8, 32, 64)
CACHE_ENV = "FER_LIVE_CACHE"
MAX_BATCH = 4096


@dataclass(frozen=True)
class CompileResult:
    """What ``compile_engine`` did.

    Attributes:
        path: The engine file in the cache.
        key: Its cache key.
        built: True when it was built now, False when an existing engine was reused.
        build_s: Seconds spent building (0 when reused).
        build: The build facts stored in the engine header.
        layers: The parsed network's layers (empty when reused).
    """

    path: Path
    key: str
    built: bool
    build_s: float
    build: dict[str, Any]
    layers: list[dict[str, str]] = field(default_factory=list)


def default_cache_dir() -> Path:
    """``$FER_LIVE_CACHE`` or ``~/.cache/fer-live/engines``."""
    override = os.environ.get(CACHE_ENV, "").strip()
    return Path(override).expanduser() if override else Path.home() / ".cache/fer-live/engines"


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """``"1,8,32"`` -> (1, 8, 32), sorted and unique.

    Raises:
        ConfigError: Not a comma-separated list of integers in 1..4096.
    """
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ConfigError(f"--batch-sizes must be integers like 1,8,32,64, got {text!r}") from None
    if not sizes or sizes[0] < 1 or sizes[-1] > MAX_BATCH:
        raise ConfigError(f"--batch-sizes must be in 1..{MAX_BATCH}, got {text!r}")
    return tuple(sizes)


def profile_for(batch_sizes: Sequence[int]) -> tuple[int, int, int]:
    """The (min, opt, max) optimization profile covering the batch sizes the pipeline uses.

    min and max bound the sizes; opt (what TensorRT tunes kernels for) is the upper median,
    so a typical mid-size batch runs the tuned kernels.

    Raises:
        ConfigError: No sizes, or a size outside 1..4096.

    Example:
        >>> profile_for([1, 8, 32, 64])
        (1, 32, 64)
    """
    sizes = sorted(set(batch_sizes))
    if not sizes or sizes[0] < 1 or sizes[-1] > MAX_BATCH:
        raise ConfigError(f"batch sizes must be in 1..{MAX_BATCH}, got {list(batch_sizes)}")
    return sizes[0], sizes[len(sizes) // 2], sizes[-1]


def cache_key(
    model_sha: str,
    compute_capability: str,
    trt_version: str,
    precision: str,
    profile: Sequence[int],
) -> str:
    """A 16-hex-digit key naming one engine build.

    Args:
        model_sha: sha256 of the ONNX file.
        compute_capability: Target GPU, e.g. ``"8.9"``.
        trt_version: Library and version, e.g. ``"tensorrt_rtx 1.7.1.116"``.
        precision: ``fp16``, ``fp32`` or ``int8``.
        profile: (min, opt, max) batch sizes.
    """
    fields = [model_sha, compute_capability, trt_version, precision, ",".join(map(str, profile))]
    return hashlib.sha256("|".join(fields).encode()).hexdigest()[:16]


def engine_path(cache_dir: Path, model: Path, precision: str, cc: str, key: str) -> Path:
    """``<cache>/<model stem>-<precision>-sm<cc>-<key>.engine``."""
    return Path(cache_dir) / f"{model.stem}-{precision}-sm{cc.replace('.', '')}-{key}.engine"


def current_compute_capability() -> str | None:
    """``"9.0"`` for the first CUDA GPU torch sees, None without torch or a GPU."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability(0)
    return f"{major}.{minor}"


def read_onnx(model: Path) -> tuple[Any, ModelCard]:
    """Load an ONNX model and its card (metadata, else sidecar).

    Raises:
        ModelError: Missing or broken file, or no card.
    """
    onnx = import_onnx()
    try:
        proto = onnx.load(str(model))
    except Exception as exc:  # onnx raises DecodeError/OSError variants
        raise ModelError(f"cannot load ONNX model {model}: {exc}") from None
    meta = {prop.key: prop.value for prop in proto.metadata_props}
    embedded = ModelCard.from_json(meta[CARD_KEY]) if CARD_KEY in meta else None
    card = resolve_card(model, embedded, f"'{CARD_KEY}' metadata")
    if len(proto.graph.input) < 1:
        raise ModelError(f"{model} has no input")
    return proto, card


def _onnx_bytes(proto: Any, precision: str) -> bytes:
    if precision == "fp16":
        proto = to_fp16(proto)
    return bytes(proto.SerializeToString())


def _target(lib: TrtLib, compute_capability: str | None) -> tuple[str, str | None]:
    """(cc for the cache key, cc to pass to the builder or None for the current GPU)."""
    current = current_compute_capability()
    if compute_capability is None or compute_capability == current:
        if current is None:
            hint = " (TensorRT-RTX can: pass --compute-capability 8.9)" if lib.rtx else ""
            raise BackendUnavailable(f"no CUDA GPU here to build an engine for{hint}")
        return current, None
    return compute_capability, compute_capability


def compile_engine(
    model: Path,
    precision: str = "fp16",
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    cache_dir: Path | None = None,
    force: bool = False,
    compute_capability: str | None = None,
    calibration_images: Sequence[Path] = (),
) -> CompileResult:
    """Build (or reuse from the cache) a TensorRT engine for an ONNX model.

    Args:
        model: The ``.onnx`` file with a model card.
        precision: ``fp16`` (default), ``fp32`` or ``int8`` (TensorRT <= 10, with images).
        batch_sizes: Batch sizes the engine must run; they set the optimization profile.
        cache_dir: Engine cache folder; default ``default_cache_dir()``.
        force: Rebuild even when a cached engine exists.
        compute_capability: Target GPU (``"8.9"``); default the GPU in this machine.
            TensorRT-RTX builds for other targets, even without a GPU.
        calibration_images: Face images (e.g. FERPlus training PNGs) for INT8 calibration.

    Returns:
        Where the engine is and whether it was built now.

    Raises:
        BackendUnavailable: No TensorRT, or no GPU and no target.
        ConfigError: Bad precision, batch sizes or target.
        ModelError: The model is broken, has no card, or the build fails.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    model = Path(model)
    lib = import_tensorrt()
    profile = profile_for(batch_sizes)
    cc_key, cc_build = _target(lib, compute_capability)
    key = cache_key(sha256_file(model), cc_key, lib.label, precision, profile)
    path = engine_path(cache_dir or default_cache_dir(), model, precision, cc_key, key)
    if path.is_file() and not force:
        logger.info("engine cache hit: %s", path)
        try:
            return CompileResult(path, key, False, 0.0, read_engine(path).build)
        except ModelError as exc:
            raise ModelError(f"cached engine is unreadable ({exc}); rerun with --force") from None
    return _build(lib, model, path, key, precision, profile, cc_key, cc_build, calibration_images)


def _build(
    lib: TrtLib,
    model: Path,
    path: Path,
    key: str,
    precision: str,
    profile: tuple[int, int, int],
    cc_key: str,
    cc_build: str | None,
    calibration_images: Sequence[Path],
) -> CompileResult:
    proto, card = read_onnx(model)
    input_name = proto.graph.input[0].name
    shape = (card.channels, card.input_size, card.input_size)
    spec = BuildSpec(input_name, shape, profile, precision, cc_build)
    calibrator = None
    if precision == "int8":
        calibrator = _calibrator(lib, card, calibration_images, profile[1])
    start = time.perf_counter()
    plan, layers = build_plan(lib, _onnx_bytes(proto, precision), spec, calibrator)
    build_s = time.perf_counter() - start
    build = {
        "model_sha256": sha256_file(model),
        "model_file": model.name,
        "trt": lib.label,
        "precision": precision,
        "profile": list(profile),
        "compute_capability": cc_key,
        "input_name": input_name,
        "outputs": [out.name for out in proto.graph.output],
        "cache_key": key,
    }
    write_engine(path, card, plan, build)
    logger.info("built %s in %.1f s", path, build_s)
    return CompileResult(path, key, True, build_s, build, layers)


def calibration_batches(
    images: Sequence[Path], card: ModelCard, batch: int
) -> Iterator[np.ndarray]:
    """Full batches of model input from face images (unreadable files are skipped).

    Args:
        images: Image files of face crops (FERPlus PNGs are 48 x 48 gray faces).
        card: The model card (size, channels, normalization).
        batch: Rows per batch; a last partial batch is dropped.

    Yields:
        float32 (batch, C, S, S) made by ``to_model_input``, the training/runtime preprocessing.
    """
    flag = cv2.IMREAD_GRAYSCALE if card.channels == 1 else cv2.IMREAD_COLOR
    rows: list[np.ndarray] = []
    for image_path in images:
        face = cv2.imread(str(image_path), flag)
        if face is None:
            continue
        if card.channels == 3:
            face = cv2.cvtColor(face, cv2.COLOR_BGR2RGB)
        rows.append(to_model_input(face[None], card)[0])
        if len(rows) == batch:
            yield np.stack(rows)
            rows = []


def _calibrator(lib: TrtLib, card: ModelCard, images: Sequence[Path], batch: int) -> Any:
    # Lazy: only int8 calibration needs torch, and the backends package (which runs compiled
    # engines) is a layer above this one.
    from fer_live.infer.gpu import import_torch_cuda

    if not supports_int8(lib):
        raise ConfigError(
            f"int8 needs TensorRT <= 10 (implicit calibration); {lib.label} needs an explicitly "
            "quantized (Q/DQ) ONNX model"
        )
    if len(images) < batch:
        raise ConfigError(f"int8 needs at least {batch} calibration images, got {len(images)}")
    torch = import_torch_cuda(CUDA)
    return make_calibrator(lib, calibration_batches(images, card, batch), torch, "cuda")


def image_files(folder: Path, count: int) -> list[Path]:
    """The first ``count`` images (sorted by name) in ``folder``, for INT8 calibration.

    Raises:
        ConfigError: The folder does not exist or ``count`` < 1.
    """
    if count < 1:
        raise ConfigError(f"--calib-count must be >= 1, got {count}")
    if not Path(folder).is_dir():
        raise ConfigError(f"--calib-images must be a folder of face images, got {folder}")
    suffixes = (".png", ".jpg", ".jpeg", ".bmp")
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in suffixes)[:count]


def compile_report(result: CompileResult, inspect: bool = False) -> dict[str, Any]:
    """A JSON-ready report of a compile, with layer precisions when ``inspect`` is set.

    The parsed network's layers are known only when the engine was built now; the engine
    inspector needs a GPU whose TensorRT runtime accepts the engine, else it reports why not.
    """
    report: dict[str, Any] = {
        "path": str(result.path),
        "key": result.key,
        "built": result.built,
        "build_s": round(result.build_s, 3),
        "engine_bytes": result.path.stat().st_size,
        "build": result.build,
    }
    if not inspect:
        return report
    if result.layers:
        report["layer_precisions"] = precision_counts(result.layers)
        report["layers"] = result.layers
    inspected = inspect_plan(import_tensorrt(), read_engine(result.path).plan)
    if "error" in inspected:
        report["engine_inspector"] = f"not available: {inspected['error']}"
    else:
        report["engine_inspector"] = f"{len(inspected['layers'])} engine layers"
        report["engine_layers"] = inspected["layers"]
    return report
