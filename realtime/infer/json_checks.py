"""Small checks for JSON values read from user-passed files (cards, heads, engine headers).

``json.loads`` accepts what no writer of ours produces: ``NaN``, integers of thousands of digits,
nesting hundreds of levels deep. These helpers let the readers refuse such values with one short
line instead of failing later with another exception type.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 32
_MAX_MAGNITUDE = 1e300


def is_number(value: Any) -> bool:
    """True for a finite int or float that converts to float (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):
        return abs(value) < _MAX_MAGNITUDE  # float(10**400) raises OverflowError
    return math.isfinite(value)


def is_int(value: Any) -> bool:
    """True for an int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def exceeds_depth(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when lists/dicts nest deeper than ``limit`` (iterative: no recursion to overflow)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if depth >= limit:
                return True
            stack.extend((child, depth + 1) for child in item)
    return False


def has_non_finite(value: Any) -> bool:
    """True when a number anywhere in ``value`` is NaN or infinite (not JSON; NaN != NaN)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            return True
    return False


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for one-line error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
