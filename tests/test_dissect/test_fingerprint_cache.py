"""The JA3/JA4 caches: a hit must equal a fresh computation, and the caches stay bounded.

Oracle: the uncached fingerprint functions themselves (checked against FoxIO, nDPI and
tshark in test_fingerprint.py).
"""

from __future__ import annotations

import pytest

from dotaudit.dissect import fingerprint
from dotaudit.dissect.fingerprint import ja3, ja3_string, ja4
from tests.test_dissect.test_fingerprint import spec_hello


@pytest.fixture(autouse=True)
def empty_caches() -> None:
    fingerprint._JA3_CACHE.clear()
    fingerprint._JA4_CACHE.clear()


def test_hit_equals_fresh_computation() -> None:
    hello = spec_hello()
    first = (ja3_string(hello), ja3(hello), ja4(hello), ja4(hello, quic=True))
    # Same fingerprint inputs, other SNI text: served from the cache.
    again = spec_hello(sni="other.example")
    second = (ja3_string(again), ja3(again), ja4(again), ja4(again, quic=True))
    assert first == second
    assert first[2] == fingerprint._ja4(hello, False) == "t13d1516h2_8daaf6152771_e5627efa2ab1"
    assert first[3].startswith("q13d")
    assert first[0] == fingerprint._ja3_text(hello)
    assert len(fingerprint._JA4_CACHE) == 2  # TCP and QUIC are distinct keys


@pytest.mark.parametrize(
    "change",
    [
        {"ciphers": (0x1301,)},
        {"extensions": (0x0000, 0x002B)},
        {"alpn": ("http/1.1",)},
        {"supported_versions": (0x0303,)},
        {"signature_algorithms": (0x0403,)},
    ],
)
def test_every_ja4_input_is_part_of_the_key(change: dict[str, object]) -> None:
    base = spec_hello()
    ja4(base)
    changed = spec_hello(**change)
    assert ja4(changed) == fingerprint._ja4(changed, False) != fingerprint._ja4(base, False)


@pytest.mark.parametrize(
    "change",
    [
        {"ciphers": (0x1301,)},
        {"extensions": (0x0000, 0x002B)},
        {"groups": (0x001D,)},
        {"ec_point_formats": (0, 1)},
        {"legacy_version": 0x0301},
    ],
)
def test_every_ja3_input_is_part_of_the_key(change: dict[str, object]) -> None:
    base = spec_hello()
    ja3(base)
    changed = spec_hello(**change)
    assert ja3_string(changed) == fingerprint._ja3_text(changed) != fingerprint._ja3_text(base)


def test_caches_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fingerprint, "MAX_CACHED", 5)
    for n in range(1, 40):
        hello = spec_hello(ciphers=tuple(range(1, n + 1)))
        assert ja4(hello) == fingerprint._ja4(hello, False)
        assert ja3_string(hello) == fingerprint._ja3_text(hello)
    assert len(fingerprint._JA3_CACHE) == 5
    assert len(fingerprint._JA4_CACHE) == 5


def test_grease_and_extension_order_share_one_entry() -> None:
    # Chrome draws fresh GREASE values and permutes its extensions on every connection.
    base = spec_hello()
    variant = spec_hello(
        ciphers=(0x3A3A, *reversed(base.ciphers)),
        extensions=(0xDADA, *reversed(base.extensions), 0x1A1A),
        signature_algorithms=(*base.signature_algorithms, 0x7A7A),
        supported_versions=(0x4A4A, *base.supported_versions),
    )
    assert ja4(base) == ja4(variant) == fingerprint._ja4(variant, False)
    assert len(fingerprint._JA4_CACHE) == 1
    # JA3 keeps the wire order of extensions, so only GREASE is ignored in its key.
    greased = spec_hello(ciphers=(0x3A3A, *base.ciphers), groups=(0x5A5A, *base.groups))
    assert ja3(base) == ja3(greased) == ja3(spec_hello())
    assert ja3_string(greased) == fingerprint._ja3_text(greased)
    assert len(fingerprint._JA3_CACHE) == 1
    assert ja3(variant) != ja3(base)
