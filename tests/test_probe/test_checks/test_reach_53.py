"""reach.53: what else answers on the host. Oracle: the lab's construction (Unbound on
53 and 853 only; the DoQ server on UDP 853 only; dnsdist's DoH listener on TCP 443)."""

from __future__ import annotations

import pytest

from dotaudit.probe.base import ProbeConfig
from dotaudit.probe.registry import BY_ID
from dotaudit.probe.runner import TargetResult, run_target
from dotaudit.probe.target import parse_target
from tests.lab.lab import Lab
from tests.test_probe.lab_probe import evidence, status

pytestmark = pytest.mark.lab


def reach_53(lab: Lab, name: str) -> TargetResult:
    config = ProbeConfig(timeout=2.0)
    return run_target(parse_target(lab[name].address), config, checks=[BY_ID["reach.53"]])


def test_unbound_answers_on_53_only(padded_audit: TargetResult) -> None:
    assert status(padded_audit, "reach.53") == "pass"
    assert padded_audit.attempt("reach.53").error_reason == "answering: UDP 53, TCP 53"  # type: ignore[union-attr]
    found = evidence(padded_audit, "reach.53")
    assert found["udp53"]["answered"] and found["tcp53"]["answered"]  # type: ignore[index]
    assert found["tcp443"]["class"] == "refused"  # type: ignore[index]
    assert found["udp853"]["class"] == "no-answer"  # type: ignore[index]


def test_doq_server_speaks_quic_version_1(lab: Lab) -> None:
    found = evidence(reach_53(lab, "doq"), "reach.53")
    assert found["udp853"] == {"class": "quic", "versions": found["udp853"]["versions"]}  # type: ignore[index]
    assert "0x00000001" in found["udp853"]["versions"]  # type: ignore[index]
    assert found["udp53"]["answered"] is False  # type: ignore[index]


def test_nothing_answering_is_not_applicable(lab: Lab) -> None:
    """dnsdist's interceptor listens on 853 only. Before, reach.53 "passed" while UDP and
    TCP 53 were refused."""
    result = reach_53(lab, "intercept")
    found = evidence(result, "reach.53")
    assert found["udp53"]["answered"] is False and found["tcp53"]["answered"] is False  # type: ignore[index]
    assert status(result, "reach.53") == "not-applicable"
    attempt = result.attempt("reach.53")
    assert attempt is not None and "nothing answers" in (attempt.error_reason or "")
    # UDP has no RST: a refused datagram is worded as the ICMP port unreachable it was
    assert "TCP RST" not in found["udp53"]["error"]  # type: ignore[index]


def test_doh_listener_is_open_on_443(lab: Lab) -> None:
    found = evidence(reach_53(lab, "doh"), "reach.53")
    assert found["tcp443"]["class"] == "open"  # type: ignore[index]
