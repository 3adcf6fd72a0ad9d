"""tls.versions on the lab's TLS 1.2-only Unbound (tls12) and the padded one (both
offer 1.2 and 1.3, neither 1.0 nor 1.1). Oracle: the lab's Unbound configurations."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dotaudit.probe.base import CheckStatus
from dotaudit.probe.runner import TargetResult
from tests.test_probe.lab_probe import attempt

pytestmark = pytest.mark.lab


def test_tls12_only_server(probe_lab: Callable[..., TargetResult]) -> None:
    versions = attempt(probe_lab("tls12"), "tls.versions").evidence
    assert versions["accepted"]["TLSv1.2"] is True and versions["accepted"]["TLSv1.3"] is False
    assert versions["negotiated"] == "TLSv1.2"


def test_padded_server_offers_tls12_and_13_only(padded_audit: TargetResult) -> None:
    found = attempt(padded_audit, "tls.versions")
    assert found.status is CheckStatus.PASS
    assert found.evidence["accepted"] == {"TLSv1": False, "TLSv1.1": False, "TLSv1.2": True,
                                          "TLSv1.3": True}  # fmt: skip
    assert found.evidence["negotiated"] == "TLSv1.3"
