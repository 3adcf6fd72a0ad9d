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
    found = evidence(padded_audit, "reach.53")
    assert found["udp53"]["answered"] and found["tcp53"]["answered"]  # type: ignore[index]
    assert found["tcp443"]["class"] == "refused"  # type: ignore[index]
    assert found["udp853"]["class"] == "no-answer"  # type: ignore[index]


def test_doq_server_speaks_quic_version_1(lab: Lab) -> None:
    found = evidence(reach_53(lab, "doq"), "reach.53")
    assert found["udp853"] == {"class": "quic", "versions": found["udp853"]["versions"]}  # type: ignore[index]
    assert "0x00000001" in found["udp853"]["versions"]  # type: ignore[index]
    assert found["udp53"]["answered"] is False  # type: ignore[index]


def test_doh_listener_is_open_on_443(lab: Lab) -> None:
    found = evidence(reach_53(lab, "doh"), "reach.53")
    assert found["tcp443"]["class"] == "open"  # type: ignore[index]
