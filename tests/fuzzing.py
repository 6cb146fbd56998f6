"""Helpers shared by the fuzz tests of the product's readers and the trainer's folder reader."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from fer_live.errors import FerLiveError


def refuses_cleanly(read: Callable[..., Any], *args: Any) -> Any:
    """Run a reader; a FerLiveError with a one-line message is fine, anything else fails."""
    try:
        return read(*args)
    except FerLiveError as exc:
        message = str(exc)
        assert message and "\n" not in message and len(message) < 2000, message
        return None


def mutations(valid: bytes) -> st.SearchStrategy[bytes]:
    """Truncated copies, copies with a few bytes changed, and copies with bytes inserted."""
    positions = st.integers(0, max(len(valid) - 1, 0))

    def flip(changes: list[tuple[int, int]]) -> bytes:
        data = bytearray(valid)
        for at, value in changes:
            data[at] = value
        return bytes(data)

    def insert(args: tuple[int, bytes]) -> bytes:
        return valid[: args[0]] + args[1] + valid[args[0] :]

    return st.one_of(
        st.integers(0, len(valid)).map(lambda n: valid[:n]),
        st.lists(st.tuples(positions, st.integers(0, 255)), min_size=1, max_size=8).map(flip),
        st.tuples(positions, st.binary(min_size=1, max_size=16)).map(insert),
    )
