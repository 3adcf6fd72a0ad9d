"""The declarative setting checks: TOML types kept apart, paths and reasons in one line."""

from __future__ import annotations

import datetime
import tomllib

import pytest

from dotaudit.model.validate import (
    Boolean,
    Invalid,
    ListOf,
    MapOf,
    Number,
    Table,
    child,
    toml_type,
)


@pytest.mark.parametrize(
    ("toml", "name"),
    [
        ("true", "a boolean"),
        ("1", "an integer"),
        ("1.5", "a float"),
        ('"x"', "a string"),
        ("[1]", "a list"),
        ("{a = 1}", "a table"),
        ("1979-05-27", "a date or time"),
    ],
)
def test_toml_types_are_named(toml: str, name: str) -> None:
    assert toml_type(tomllib.loads(f"v = {toml}")["v"]) == name


def test_keys_are_quoted_when_toml_would_need_it() -> None:
    assert child("", "plain_key-1") == "plain_key-1"
    assert child("severity", "DA-DOT-003") == "severity.DA-DOT-003"
    assert child("t", "with space") == 't."with space"'
    assert child("t", "dot.ted") == 't."dot.ted"'


@pytest.mark.parametrize("value", [0, 1, True])
def test_boolean_takes_only_booleans(value: object) -> None:
    if isinstance(value, bool):
        assert Boolean()(value, "k") is value
    else:
        with pytest.raises(Invalid, match=r"^k: expected true or false, got an integer$"):
            Boolean()(value, "k")


def test_number_bounds_are_open_below_and_closed_above() -> None:
    check = Number(1, 2)
    assert check(2, "n") == 2.0
    assert check(1.000001, "n") == pytest.approx(1.000001)
    for outside in (1, 2.000001, float("nan")):
        with pytest.raises(Invalid, match=r"^n: expected a number in \(1, 2\], got "):
            check(outside, "n")
    with pytest.raises(Invalid, match="got a boolean"):
        check(True, "n")


def test_nested_paths_name_every_level() -> None:
    check = ListOf(Table({"inner": ListOf(Boolean())}))
    assert check([{"inner": [True]}, {"inner": [False]}], "outer") == [
        {"inner": [True]},
        {"inner": [False]},
    ]
    with pytest.raises(Invalid) as caught:
        check([{"inner": [True]}, {"inner": [True, "no"]}], "outer")
    assert caught.value.path == "outer[1].inner[1]"
    assert str(caught.value) == "outer[1].inner[1]: expected true or false, got a string"


def test_map_keys_are_checked_by_the_predicate() -> None:
    check = MapOf(lambda key: key.startswith("DA-"), "an ID", Boolean())
    assert check({"DA-1": True}, "m") == {"DA-1": True}
    with pytest.raises(Invalid, match=r'^m\."x y": unknown key: expected an ID$'):
        check({"x y": True}, "m")


def test_a_date_is_not_a_string() -> None:
    with pytest.raises(Invalid, match="got a date or time"):
        Table({"when": Boolean()})({"when": datetime.date(2024, 1, 1)}, "")
