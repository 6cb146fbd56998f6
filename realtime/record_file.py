"""A records file that only ever holds whole lines, even when the disk fills up.

Each frame's records are appended in one write; if the write fails (``ENOSPC``, a broken
network share) the file is cut back to the end of the previous frame, so a reader never meets
a half line, and the caller gets one ``FerLiveError`` naming the file and the reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import BinaryIO

from realtime.errors import FerLiveError
from realtime.output_files import StagedFile


def is_special_file(path: Path) -> bool:
    """An existing path that is not a regular file: ``/dev/stdout``, ``/dev/full``, a FIFO.

    Such outputs are written in place: staging beside them would write into ``/dev`` and then
    rename a regular file over the device.
    """
    return path.exists() and not path.is_file()


class RecordFile:
    """Appends text chunks to ``path`` (staged under a hidden name unless it is a device).

    Args:
        path: The output path the user named.

    Raises:
        FerLiveError: The file cannot be created.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._staged = None if is_special_file(self.path) else StagedFile(self.path)
        target = self.path if self._staged is None else self._staged.temp
        self._size = 0
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # unbuffered: a chunk is on disk (or refused) when append returns, never half-held
            self._file: BinaryIO | None = open(target, "wb", buffering=0)  # noqa: SIM115
        except OSError as exc:
            raise FerLiveError(f"cannot write '{self.path}': {exc.strerror}") from None

    def append(self, text: str) -> None:
        """Write ``text`` whole, or cut the file back to where it was and raise.

        Raises:
            FerLiveError: The write failed (the message ends with the system's reason).
        """
        if self._file is None or not text:
            return
        raw = text.encode("utf-8")
        data = memoryview(raw)
        try:
            while data:
                written = self._file.write(data)
                if not written:  # nothing taken and no error: treat as a full device
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                data = data[written:]
        except OSError as exc:
            with contextlib.suppress(OSError):  # devices such as /dev/full cannot be truncated
                self._file.truncate(self._size)
            raise FerLiveError(f"cannot write '{self.path}': {exc.strerror}") from None
        self._size += len(raw)

    def close(self) -> None:
        """Close and move the file into place (safe to call twice)."""
        if self._file is not None:
            self._file.close()
            self._file = None
            if self._staged is not None:
                self._staged.commit()

    def abort(self) -> None:
        """Close and leave no file behind (the run never started)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._staged is not None:
            self._staged.discard()
