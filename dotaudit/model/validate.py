"""Declarative checks for settings read from TOML: each key has a type that checks it.

A type turns the TOML value into the Python value the program uses, or raises
:class:`Invalid` with the key path (``approved_dot[1].pins[0]``) and the reason in one
line, always naming what was expected. TOML keeps booleans, integers, floats, strings,
arrays and tables apart; so do these checks: ``"false"`` is not a boolean, ``true`` is not
a number (Python's ``bool`` is an ``int``), a string is not a list.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class Invalid(ValueError):
    """One setting is wrong: ``path`` is where, ``reason`` what was expected."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def toml_type(value: object) -> str:
    """The TOML name of a value's type, with its article, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime | date | time):
        return "a date or time"
    return type(value).__name__


def child(path: str, key: str) -> str:
    """``path.key``, the key quoted as TOML would need it."""
    name = key if _BARE_KEY.match(key) else json.dumps(key)
    return f"{path}.{name}" if path else name


def _shown(value: object) -> str:
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Check(Generic[T]):
    """A type for one setting. ``expected`` completes "expected ..." in messages."""

    expected: str = "a value"

    def __call__(self, value: object, path: str) -> T:
        raise NotImplementedError

    def wrong_type(self, value: object, path: str) -> Invalid:
        return Invalid(path, f"expected {self.expected}, got {toml_type(value)}")

    def wrong_value(self, value: object, path: str, why: str = "") -> Invalid:
        detail = f" ({why})" if why else ""
        return Invalid(path, f"expected {self.expected}, got {_shown(value)}{detail}")


class Boolean(Check[bool]):
    expected = "true or false"

    def __call__(self, value: object, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.wrong_type(value, path)
        return value


@dataclass
class Number(Check[float]):
    """An integer or float in ``(above, at_most]``; never a boolean, NaN or infinity."""

    above: float
    at_most: float
    unit: str = ""

    @property
    def expected(self) -> str:  # type: ignore[override]
        what = f"a number of {self.unit}" if self.unit else "a number"
        return f"{what} in ({self.above:g}, {self.at_most:g}]"

    def __call__(self, value: object, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.wrong_type(value, path)
        if not math.isfinite(value) or not self.above < value <= self.at_most:
            raise self.wrong_value(value, path)
        return float(value)


class IPAddress(Check[str]):
    """An IPv4 or IPv6 address, returned in its canonical text form."""

    expected = "an IP address"

    def __call__(self, value: object, path: str) -> str:
        if not isinstance(value, str):
            raise self.wrong_type(value, path)
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise self.wrong_value(value, path) from None


class HostName(Check[str]):
    """A DNS host name (LDH labels, an IDN as its A-label), trailing dot allowed."""

    expected = "a host name"

    def __call__(self, value: object, path: str) -> str:
        if not isinstance(value, str):
            raise self.wrong_type(value, path)
        name = value[:-1] if value.endswith(".") else value
        if not 0 < len(name) <= 253 or not all(_LABEL.match(p) for p in name.split(".")):
            raise self.wrong_value(value, path)
        return value


class SpkiPin(Check[str]):
    """Base64 of a SHA-256 digest (RFC 7858 §4.2), returned in canonical base64."""

    expected = "a base64 SHA-256 SPKI pin (32 bytes, 44 characters)"

    def __call__(self, value: object, path: str) -> str:
        if not isinstance(value, str):
            raise self.wrong_type(value, path)
        try:
            raw = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise self.wrong_value(value, path, "not base64") from None
        if len(raw) != 32:
            raise self.wrong_value(value, path, f"{len(raw)} bytes")
        return base64.b64encode(raw).decode("ascii")


@dataclass
class OneOf(Check[str]):
    """One of a fixed set of strings, exactly as spelt."""

    choices: tuple[str, ...]
    what: str = "one of"

    @property
    def expected(self) -> str:  # type: ignore[override]
        return f"{self.what} {', '.join(self.choices)}"

    def __call__(self, value: object, path: str) -> str:
        if not isinstance(value, str):
            raise self.wrong_type(value, path)
        if value not in self.choices:
            raise self.wrong_value(value, path)
        return value


@dataclass
class ListOf(Check[list[T]]):
    """A TOML array (a list) whose items all pass ``item``; ``expected`` names the whole."""

    item: Check[T]
    expected: str = "a list"

    def __call__(self, value: object, path: str) -> list[T]:
        if not isinstance(value, list):
            raise self.wrong_type(value, path)
        return [self.item(v, f"{path}[{i}]") for i, v in enumerate(value)]


@dataclass
class Table(Check[dict[str, Any]]):
    """A TOML table with known keys only; ``required`` keys must be present."""

    fields: Mapping[str, Check[Any]]
    required: frozenset[str] = frozenset()
    expected: str = "a table"

    def __call__(self, value: object, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.wrong_type(value, path)
        for key in value:
            if key not in self.fields:
                known = ", ".join(sorted(self.fields))
                raise Invalid(child(path, key), f"unknown key (known keys: {known})")
        for key in sorted(self.required - set(value)):
            raise Invalid(child(path, key), f"missing; expected {self.fields[key].expected}")
        return {key: self.fields[key](v, child(path, key)) for key, v in value.items()}


@dataclass
class MapOf(Check[dict[str, T]]):
    """A TOML table used as a mapping: every key passes ``key`` (a predicate naming what
    a key must be), every value passes ``value``."""

    key_ok: Callable[[str], bool]
    key_expected: str
    value: Check[T]
    expected: str = "a table"

    def __call__(self, value: object, path: str) -> dict[str, T]:
        if not isinstance(value, dict):
            raise self.wrong_type(value, path)
        checked: dict[str, T] = {}
        for key, item in value.items():
            where = child(path, key)
            if not self.key_ok(key):
                raise Invalid(where, f"unknown key: expected {self.key_expected}")
            checked[key] = self.value(item, where)
        return checked


__all__ = [
    "Boolean",
    "Check",
    "HostName",
    "IPAddress",
    "Invalid",
    "ListOf",
    "MapOf",
    "Number",
    "OneOf",
    "SpkiPin",
    "Table",
]
