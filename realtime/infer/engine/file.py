"""The fer-live engine file: a small JSON header (model card + build facts) before a TensorRT plan.

TensorRT has no portable place for user metadata in a serialized plan, so fer-live writes its
own header in front of it::

    offset  size  content
    0       8     magic b"FERLVENG"
    8       4     header format version, uint32 little-endian (1)
    12      4     N = length of the JSON header in bytes, uint32 little-endian
    16      N     UTF-8 JSON: {"card": <ModelCard dict>, "build": {...}}
    16+N    ...   the TensorRT plan, exactly as ``build_serialized_network`` returned it

``build`` holds ``model_sha256``, ``trt`` (library and version), ``precision``, ``profile``
([min, opt, max] batch), ``compute_capability``, ``input_name`` and ``outputs``. The card is also
written beside the engine as ``<stem>.json`` (with the engine file's sha256), and a bare plan
(no header) is read with that sidecar card, so engines built by other tools work too.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_live.errors import ModelError
from fer_live.infer.card import ModelCard, read_sidecar, write_sidecar
from fer_live.infer.json_checks import exceeds_depth, short

MAGIC = b"FERLVENG"
HEADER_VERSION = 1
_PREFIX = struct.Struct("<8sII")
_MAX_HEADER_BYTES = 1 << 20


@dataclass(frozen=True)
class EngineFile:
    """A parsed engine file.

    Attributes:
        card: The model card.
        plan: The TensorRT plan bytes.
        build: Build facts from the header (empty for a bare plan).
    """

    card: ModelCard
    plan: bytes
    build: dict[str, Any] = field(default_factory=dict)


def pack_engine(card: ModelCard, plan: bytes, build: dict[str, Any]) -> bytes:
    """Header + plan bytes, in the layout of this module's docstring."""
    header = json.dumps({"card": json.loads(card.to_json()), "build": build}, sort_keys=True)
    data = header.encode()
    return _PREFIX.pack(MAGIC, HEADER_VERSION, len(data)) + data + bytes(plan)


def unpack_engine(data: bytes, source: str = "engine") -> tuple[dict[str, Any], bytes] | None:
    """Split header JSON and plan; None when ``data`` has no fer-live header.

    Raises:
        ModelError: The header is present but truncated, too new or not valid JSON.
    """
    if not data.startswith(MAGIC):
        return None
    if len(data) < _PREFIX.size:
        raise ModelError(f"{source}: engine header is truncated")
    _, version, length = _PREFIX.unpack_from(data)
    if version != HEADER_VERSION:
        raise ModelError(f"{source}: engine header version {version} is not supported")
    end = _PREFIX.size + length
    if length > _MAX_HEADER_BYTES or end > len(data):
        raise ModelError(f"{source}: engine header is truncated")
    try:
        header = json.loads(data[_PREFIX.size : end].decode())
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, huge ints, deep nesting
        raise ModelError(
            f"{source}: engine header is not valid JSON: {short(str(exc), 200)}"
        ) from None
    if not isinstance(header, dict) or "card" not in header:
        raise ModelError(f"{source}: engine header has no model card")
    if not isinstance(header.get("build", {}), dict) or exceeds_depth(header.get("build", {})):
        raise ModelError(f"{source}: engine header 'build' must be a shallow JSON object")
    return header, data[end:]


def write_engine(path: Path, card: ModelCard, plan: bytes, build: dict[str, Any]) -> Path:
    """Write the engine file atomically, then its ``<stem>.json`` sidecar card."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(pack_engine(card, plan, build))
    os.replace(partial, path)
    write_sidecar(card, path)
    return path


def read_engine(path: Path) -> EngineFile:
    """Read an engine file: the fer-live header, or a bare plan with a sidecar card.

    Raises:
        ModelError: The file is missing, has a broken header, or has no card at all.
    """
    path = Path(path)
    if not path.is_file():  # a FIFO or device would block or never end
        raise ModelError(f"engine file not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read engine {path}: {exc.strerror or exc}") from None
    unpacked = unpack_engine(data, str(path))
    if unpacked is not None:
        header, plan = unpacked
        return EngineFile(ModelCard.from_dict(header["card"]), plan, dict(header.get("build", {})))
    card = read_sidecar(path)
    if card is None:
        raise ModelError(f"{path} has no fer-live header and no {path.with_suffix('.json').name}")
    return EngineFile(card, data)
