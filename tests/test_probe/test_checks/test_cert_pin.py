"""cert.pin against a loopback TLS server. Oracle: RFC 7858 §4.2 SPKI pins of the keys
each test made (computed here by the lab PKI's own pin function, not the product's)."""

from __future__ import annotations

from dotaudit.probe.base import CheckStatus
from tests.lab.pki import spki_pin
from tests.test_probe.certgen import Issued, issue
from tests.test_probe.test_checks.conftest import Probe


def test_without_pins_the_check_skips_and_shows_the_pin(probe: Probe, root: Issued) -> None:
    leaf = issue(issuer=root)
    attempt = probe(leaf)["cert.pin"]
    pin = spki_pin(leaf.cert)
    assert attempt.status is CheckStatus.SKIP
    assert attempt.error_reason == f"no --pin given; to pin this server use --pin {pin}"
    assert attempt.evidence == {"leaf_pin": pin, "chain_pins": [pin], "pins_given": []}


def test_a_pin_of_any_chain_key_matches(probe: Probe, intermediate: Issued) -> None:
    leaf = issue(issuer=intermediate)
    wrong = "A" * 43 + "="
    attempt = probe(leaf, intermediate, pins=(wrong, spki_pin(intermediate.cert)))["cert.pin"]
    assert attempt.status is CheckStatus.PASS
    assert attempt.evidence["matched"] == [spki_pin(intermediate.cert)]
    assert attempt.evidence["chain_pins"] == [spki_pin(leaf.cert), spki_pin(intermediate.cert)]


def test_no_matching_pin_fails_naming_the_server_pin(probe: Probe, root: Issued) -> None:
    leaf = issue(issuer=root)
    pins = ("A" * 43 + "=", "B" * 43 + "=")
    attempt = probe(leaf, pins=pins)["cert.pin"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason == (
        f"none of the 2 pin(s) matches; the server's key pin is {spki_pin(leaf.cert)}"
    )
    assert attempt.evidence["matched"] == [] and attempt.evidence["pins_given"] == list(pins)
