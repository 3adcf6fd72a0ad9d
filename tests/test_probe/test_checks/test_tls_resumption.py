"""tls.resumption: the padded Unbound resumes a TLS session (RFC 7858 §3.4: servers
SHOULD enable fast TLS session resumption). Oracle: the lab's Unbound resumes the
sessions it issues (OpenSSL's server defaults, which tests/lab/unbound.py leaves alone)."""

from __future__ import annotations

import pytest

from dotaudit.probe.base import CheckStatus
from dotaudit.probe.runner import TargetResult
from tests.test_probe.lab_probe import attempt

pytestmark = pytest.mark.lab


def test_padded_unbound_resumes(padded_audit: TargetResult) -> None:
    found = attempt(padded_audit, "tls.resumption")
    assert found.status is CheckStatus.PASS
    assert found.evidence["reused"] is True
