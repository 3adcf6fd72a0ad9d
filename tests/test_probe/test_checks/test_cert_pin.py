"""cert.pin against the lab: the right pin passes, none given skips and prints the pin it
saw (a wrong pin is in test_interception.py). Oracle: the lab PKI's own pin of each leaf
(tests/lab/pki.py, checked against OpenSSL in tests/test_lab/test_pki.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dotaudit.probe.base import CheckStatus
from dotaudit.probe.runner import TargetResult
from tests.lab.lab import Lab
from tests.test_probe.lab_probe import attempt

pytestmark = pytest.mark.lab


def test_seen_pin_printed_when_no_pin_given(lab: Lab, padded_audit: TargetResult) -> None:
    pin = attempt(padded_audit, "cert.pin")
    assert pin.status is CheckStatus.NOT_APPLICABLE  # no pin given: nothing to match
    assert lab["padded"].pin in (pin.error_reason or "")


def test_matching_pin_passes(lab: Lab, probe_lab: Callable[..., TargetResult]) -> None:
    pin = attempt(probe_lab("padded", pins=(lab["padded"].pin,)), "cert.pin")
    assert pin.status is CheckStatus.PASS
    assert pin.evidence["leaf_pin"] == lab["padded"].pin
    assert pin.evidence["pins_given"] == [lab["padded"].pin]
