"""interception against dnsdist presenting a rogue CA's leaf for the padded Unbound it
relays to. Oracle: the lab's construction (tests/lab/lab.py: the intercept leaf is signed
by the rogue CA, the user pins the real resolver's key)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dotaudit.probe.base import CheckStatus
from dotaudit.probe.runner import TargetResult
from tests.lab.lab import Lab
from tests.test_probe.lab_probe import attempt

pytestmark = pytest.mark.lab

Probe = Callable[..., TargetResult]


def test_dnsdist_with_rogue_certificate_is_interception(lab: Lab, probe_lab: Probe) -> None:
    # The user pins the real resolver behind dnsdist; dnsdist shows the rogue CA's leaf.
    result = probe_lab("intercept", pins=(lab["padded"].pin,))
    interception = attempt(result, "interception")
    assert interception.status is CheckStatus.FAIL
    assert "matches none of the pins" in (interception.error_reason or "")
    assert "rogue" in interception.evidence["issuer"]
    assert attempt(result, "cert.pin").status is CheckStatus.FAIL
    assert result.verdict.opportunistic == "intercepted"
    assert result.verdict.strict == "refuse"
    assert any("leak every query" in r for r in result.verdict.reasons)


def test_interception_without_pin_still_flagged_by_expected_ca(probe_lab: Probe) -> None:
    interception = attempt(probe_lab("intercept"), "interception")
    assert interception.status is CheckStatus.FAIL
    assert "instead of the expected CA" in (interception.error_reason or "")
