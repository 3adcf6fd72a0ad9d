"""doq against the lab's DoQ server (tests/lab/doq_server.py, aioquic, pads to 468).
Oracles: the lab's construction, RFC 9250 §4.1 (ALPN "doq") and §4.2.1 (message ID 0)."""

from __future__ import annotations

import pytest

from tests.lab.lab import Lab
from tests.test_probe.lab_probe import evidence, probe, status

pytestmark = pytest.mark.lab


def test_doq_server_passes_padding_and_alpn(lab: Lab) -> None:
    result = probe(lab, "doq", {"doq", "reach.53"})
    assert status(result, "doq") == "pass", result.attempt("doq")
    found = evidence(result, "doq")
    assert found["alpn"] == "doq" and found["message_id"] == 0
    assert found["padded"] is True and found["response_len"] % 468 == 0  # type: ignore[operator]
    assert found["certificate"]["chain_verified"] is True  # type: ignore[index]
    assert result.stats["quic_handshakes"] == 1
