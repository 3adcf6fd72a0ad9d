"""reuse: the padded Unbound keeps one connection for several queries (RFC 7858 §3.4).
Oracle: the lab's Unbound configuration (keepalive 120 s, no idle close during the run)."""

from __future__ import annotations

import pytest

from dotaudit.probe.runner import TargetResult
from tests.test_probe.lab_probe import status

pytestmark = pytest.mark.lab


def test_padded_unbound_reuses_connections(padded_audit: TargetResult) -> None:
    assert status(padded_audit, "reuse") == "pass"
