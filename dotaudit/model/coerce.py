"""Untrusted JSON values in, typed values out.

A saved report may come from a hand-edited file, so whoever reads one (the model's
``coerce_report``, the HTML views) assumes no type: each accessor here returns a safe
default instead of raising.
"""

from __future__ import annotations

from typing import Any


def num(value: object) -> float | None:
    """A finite number, or None (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value and abs(value) != float("inf") else None


def as_int(value: object) -> int:
    number = num(value)
    return int(number) if number is not None else 0


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def rows_of(value: object) -> list[dict[str, Any]]:
    """The object rows of a list; anything else is dropped."""
    return [row for row in value if isinstance(row, dict)] if isinstance(value, list) else []


def scalar(value: object) -> object:
    """A hashable JSON scalar: containers become their text."""
    return value if value is None or isinstance(value, str | int | float) else str(value)
