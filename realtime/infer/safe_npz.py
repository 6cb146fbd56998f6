"""Read named arrays from a user-passed ``.npz`` without trusting its headers.

``np.load`` allocates the array that a member's ``.npy`` header declares before it reads the
data, so a 200-byte file can ask for 40 GB. This reader checks each declared size against the
member's real size and a cap first, never unpickles (object dtypes are refused), checks the
zip CRC, and turns every malformed archive into one ``ModelError`` line.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from fer_live.errors import ModelError
from fer_live.infer.json_checks import short

_MAX_HEADER_BYTES = 10_000  # numpy's own default for max_header_size
# zipfile and numpy's header parser raise many types on corrupt input; all mean "malformed".
_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    SyntaxError,
    TypeError,
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,
    RuntimeError,
    OverflowError,
)


def read_npz(path: Path, names: tuple[str, ...], max_bytes: int) -> dict[str, np.ndarray]:
    """Read the arrays ``names`` from an ``.npz`` archive.

    Args:
        path: The ``.npz`` file.
        names: Members to read (without ``.npy``); each must be present.
        max_bytes: Cap on the declared size of each array.

    Returns:
        The arrays by name.

    Raises:
        ModelError: The file is not an ``.npz`` archive, a member is missing, declares more data
            than it holds or than ``max_bytes``, has an object dtype, or is corrupt.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            return {name: _read_member(archive, f"{name}.npy", max_bytes) for name in names}
    except _READ_ERRORS as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path} is not a valid .npz file: {short(reason, 200)}") from None


def _read_member(archive: zipfile.ZipFile, member: str, max_bytes: int) -> np.ndarray:
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise ModelError(f"{archive.filename} has no array {member!r}") from None
    with archive.open(info) as handle:
        shape, fortran, dtype = _read_header(handle)
        header_size = handle.tell()
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > max_bytes or nbytes != info.file_size - header_size:
            raise ModelError(
                f"{archive.filename}: {member} declares {nbytes} bytes of data, "
                f"holds {max(info.file_size - header_size, 0)} (cap {max_bytes})"
            )
        data = handle.read(nbytes)
        if len(data) != nbytes or handle.read(1):  # reading to the end checks the CRC
            raise ModelError(f"{archive.filename}: {member} is truncated or has trailing data")
    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape))
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def _read_header(handle: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        header = np.lib.format.read_array_header_1_0(handle, max_header_size=_MAX_HEADER_BYTES)
    elif version == (2, 0):
        header = np.lib.format.read_array_header_2_0(handle, max_header_size=_MAX_HEADER_BYTES)
    else:
        raise ValueError(f".npy format version {version} is not supported")
    shape, fortran, dtype = header
    if dtype.hasobject:
        raise ValueError("object arrays are refused (they would need pickle)")
    return tuple(int(n) for n in shape), bool(fortran), dtype
