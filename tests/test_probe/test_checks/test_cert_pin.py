"""cert.pin against the lab: the right pin passes, none given skips and prints the pin it
saw (a wrong pin is in test_interception.py). Oracle: the lab PKI's own pin of each leaf
(tests/lab/pki.py, checked against OpenSSL in tests/test_lab/test_pki.py).

Without the lab: cert.pin against a loopback TLS server. Oracle: RFC 7858 §4.2 SPKI pins of
the keys each test made (computed here by the lab PKI's own pin function, not the
product's).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dotaudit.probe.base import CheckStatus
from dotaudit.probe.runner import TargetResult
from tests.certgen import Issued, issue
from tests.lab.lab import Lab
from tests.lab.pki import spki_pin
from tests.test_probe.lab_probe import attempt
from tests.test_probe.test_checks.conftest import ServerProbe


@pytest.mark.lab
def test_seen_pin_printed_when_no_pin_given(lab: Lab, padded_audit: TargetResult) -> None:
    pin = attempt(padded_audit, "cert.pin")
    assert pin.status is CheckStatus.NOT_APPLICABLE  # no pin given: nothing to match
    assert lab["padded"].pin in (pin.error_reason or "")


@pytest.mark.lab
def test_matching_pin_passes(lab: Lab, probe_lab: Callable[..., TargetResult]) -> None:
    pin = attempt(probe_lab("padded", pins=(lab["padded"].pin,)), "cert.pin")
    assert pin.status is CheckStatus.PASS
    assert pin.evidence["leaf_pin"] == lab["padded"].pin
    assert pin.evidence["pins_given"] == [lab["padded"].pin]


def test_without_pins_the_check_is_not_applicable_and_shows_the_pin(
    probe_server: ServerProbe, root: Issued
) -> None:
    leaf = issue(issuer=root)
    attempt = probe_server(leaf)["cert.pin"]
    pin = spki_pin(leaf.cert)
    assert attempt.status is CheckStatus.NOT_APPLICABLE
    assert attempt.error_reason == f"no --pin given; to pin this server use --pin {pin}"
    assert attempt.evidence == {"leaf_pin": pin, "chain_pins": [pin], "pins_given": []}


def test_a_pin_of_any_chain_key_matches(probe_server: ServerProbe, intermediate: Issued) -> None:
    leaf = issue(issuer=intermediate)
    wrong = "A" * 43 + "="
    attempt = probe_server(leaf, intermediate, pins=(wrong, spki_pin(intermediate.cert)))[
        "cert.pin"
    ]
    assert attempt.status is CheckStatus.PASS
    assert attempt.evidence["matched"] == [spki_pin(intermediate.cert)]
    assert attempt.evidence["chain_pins"] == [spki_pin(leaf.cert), spki_pin(intermediate.cert)]


def test_no_matching_pin_fails_naming_the_server_pin(
    probe_server: ServerProbe, root: Issued
) -> None:
    leaf = issue(issuer=root)
    pins = ("A" * 43 + "=", "B" * 43 + "=")
    attempt = probe_server(leaf, pins=pins)["cert.pin"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason == (
        f"none of the 2 pin(s) matches; the server's key pin is {spki_pin(leaf.cert)}"
    )
    assert attempt.evidence["matched"] == [] and attempt.evidence["pins_given"] == list(pins)
