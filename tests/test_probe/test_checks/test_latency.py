"""latency on the padded Unbound: round trips to the first answer, reused-connection
query times and plain UDP 53 for comparison. Oracle: TCP + TLS 1.3 + one query is three
round trips (RFC 8446 §2: a full handshake is one round trip after TCP's)."""

from __future__ import annotations

import pytest

from dotaudit.probe.runner import TargetResult
from tests.test_probe.lab_probe import evidence

pytestmark = pytest.mark.lab


def test_latency_round_trips_and_samples(padded_audit: TargetResult) -> None:
    latency = evidence(padded_audit, "latency")
    assert latency["round_trips"]["dot_first_answer"] == 3  # type: ignore[index]
    assert latency["reused_query_ms"]["n"] >= 5  # type: ignore[index]
    assert latency["udp53"]["reachable"] is True  # type: ignore[index]
