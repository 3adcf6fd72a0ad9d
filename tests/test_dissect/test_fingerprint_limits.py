"""Fingerprint caching stays bounded in bytes too, and the list formatting is exact.

Oracle: the uncached fingerprint functions (checked against FoxIO, nDPI and tshark in
test_fingerprint.py) and Python's own per-value ``format(v, "04x")``.
"""

from __future__ import annotations

import pytest

from dotaudit.dissect import fingerprint
from dotaudit.dissect.fingerprint import MAX_KEYED_VALUES, ja3_pair, ja4
from tests.test_dissect.test_fingerprint import spec_hello


@pytest.fixture(autouse=True)
def empty_caches() -> None:
    fingerprint._JA3_CACHE.clear()
    fingerprint._JA4_CACHE.clear()


def test_huge_hellos_are_fingerprinted_but_not_remembered() -> None:
    huge = spec_hello(ciphers=tuple(range(0x100, 0x100 + MAX_KEYED_VALUES + 1)))
    assert ja4(huge) == fingerprint._ja4(huge, False)
    text, digest = ja3_pair(huge)
    assert text == fingerprint._ja3_text(huge)
    assert len(digest) == 32
    assert not fingerprint._JA4_CACHE
    assert not fingerprint._JA3_CACHE
    # An ordinary hello is still remembered.
    ja4(spec_hello())
    ja3_pair(spec_hello())
    assert len(fingerprint._JA4_CACHE) == len(fingerprint._JA3_CACHE) == 1


@pytest.mark.parametrize(
    "values", [[0], [0x1301], [0x0A0A, 0xC02B, 0xFFFF], list(range(0, 70000, 997))]
)
def test_hex_list_matches_per_value_formatting(values: list[int]) -> None:
    assert fingerprint._hex_list(values) == ",".join(format(v, "04x") for v in values)
    assert fingerprint._hex_list(tuple(values)) == fingerprint._hex_list(values)
