"""Known resolver lists (dotaudit/model/resolvers.py): the packaged one, and any file in
its format (``--known FILE``), which is untrusted input.

Oracle: dotaudit/data/resolvers.json itself, and the format it documents.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dotaudit.model.resolvers import MAX_RESOLVERS, known_resolvers, parse_directory
from tests.conftest import ROOT


def test_the_packaged_list_keeps_its_order_and_optional_doq_names() -> None:
    data = json.loads((ROOT / "dotaudit" / "data" / "resolvers.json").read_text())
    directory = known_resolvers()
    assert [r.provider for r in directory.resolvers] == [e["provider"] for e in data["resolvers"]]
    for resolver, entry in zip(directory.resolvers, data["resolvers"], strict=True):
        assert resolver.listed[0] == entry["addresses"][0]
        assert resolver.doq_names == tuple(entry.get("doq_names", []))
    assert directory.by_address("9.9.9.9") is not None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "not a resolver list"),
        ({"resolvers": {}}, "not a resolver list"),
        ({"resolvers": [1]}, r'resolvers\[0\]: an object with a "provider" string'),
        (
            {"resolvers": [{"provider": "p", "addresses": "1.2.3.4"}]},
            r"'addresses' must be a list of strings",
        ),
        ({"resolvers": [{"provider": "p", "addresses": ["x"]}]}, "'x' is not an IP address"),
        ({"resolvers": [{"provider": "p", "dot_names": [1]}]}, "'dot_names' must be a list"),
    ],
)
def test_a_bad_list_names_what_is_wrong(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_directory(data)


def test_the_size_cap_is_refused_not_truncated() -> None:
    entry = {"provider": "p", "addresses": ["192.0.2.1"]}
    assert len(parse_directory({"resolvers": [entry] * MAX_RESOLVERS}).resolvers) == MAX_RESOLVERS
    with pytest.raises(ValueError, match=f"more than {MAX_RESOLVERS}"):
        parse_directory({"resolvers": [entry] * (MAX_RESOLVERS + 1)})


def test_missing_optional_fields_default_to_empty() -> None:
    [resolver] = parse_directory({"resolvers": [{"provider": "p"}]}).resolvers
    assert (resolver.addresses, resolver.dot_names, resolver.doq_names, resolver.source) == (
        frozenset(),
        (),
        (),
        "",
    )
