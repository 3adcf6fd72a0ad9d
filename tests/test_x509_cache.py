"""The parsed-certificate cache: hits equal a fresh parse, errors repeat, the cache is bounded.

Oracle: the uncached parser (checked against nDPI and cryptography in test_x509.py).
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from dotaudit import x509 as x509_mod
from dotaudit.errors import MalformedError
from dotaudit.x509 import parse_certificate
from tests.test_x509 import make_cert


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    x509_mod._CACHE.clear()


def test_hit_equals_fresh_parse() -> None:
    der = make_cert("dns.example", ec.generate_private_key(ec.SECP256R1()))
    first = parse_certificate(der)
    second = parse_certificate(bytes(der))
    assert first == second == x509_mod._parse_certificate(der)
    assert first.subject == "CN=dns.example"
    assert len(x509_mod._CACHE) == 1


def test_malformed_is_remembered_and_raised_again() -> None:
    for _ in range(2):
        with pytest.raises(MalformedError, match="unparseable certificate"):
            parse_certificate(b"\x30\x03\x02\x01\x00")
    assert len(x509_mod._CACHE) == 1


def test_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(x509_mod, "MAX_CACHED", 3)
    key = ec.generate_private_key(ec.SECP256R1())
    ders = [make_cert(f"host{i}.example", key) for i in range(8)]
    for der in ders:
        parse_certificate(der)
    assert len(x509_mod._CACHE) == 3
    # The oldest was evicted, yet parsing it again still gives the right facts.
    assert parse_certificate(ders[0]).subject == "CN=host0.example"
