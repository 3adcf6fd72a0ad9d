"""reach.853: a DoT server accepts TCP on 853 (RFC 7858 §3.1); a refusal says what it
means. Oracles: the lab's Unbound listening on 853, and a loopback port nobody listens
on (the kernel answers RST). Filtered and ICMP-blocked ports: test_firewall.py."""

from __future__ import annotations

import pytest

from dotaudit.probe.base import CheckStatus, ProbeConfig
from dotaudit.probe.registry import BY_ID
from dotaudit.probe.runner import TargetResult, run_target
from dotaudit.probe.target import parse_target
from tests.test_probe.lab_probe import attempt
from tests.test_probe.test_runner import closed_port


def test_closed_port_is_refused() -> None:
    port = closed_port()
    result = run_target(parse_target(f"127.0.0.1:{port}"), ProbeConfig(timeout=1.0),
                        checks=[BY_ID["reach.853"]])  # fmt: skip
    found = attempt(result, "reach.853")
    assert found.status is CheckStatus.FAIL
    assert (found.evidence["class"], found.evidence["port"]) == ("refused", port)
    assert (found.error_reason or "").startswith("refused: ")


@pytest.mark.lab
def test_lab_unbound_is_open(padded_audit: TargetResult) -> None:
    found = attempt(padded_audit, "reach.853")
    assert found.status is CheckStatus.PASS
    assert found.evidence["class"] == "open" and found.evidence["connect_ms"] >= 0
