"""Blocked-port classification in the lab's namespaces, the prober run inside them.

Oracle: tests/lab/netns.py's nftables rules (drop, reject with tcp reset, reject with
icmp admin-prohibited, nothing listening) and its two-hop router, which resets 853
itself; tests/test_lab/test_firewall.py shows each on the wire.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dotaudit.probe.findings import PORT_CLASS
from tests.lab.lab import Lab
from tests.lab.netns import FirewallLab, TwoHop

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schema" / "report.schema.json").read_text())
TIMEOUT = 2.0


def probe_in(netns: str, *argv: str) -> dict[str, Any]:
    target: dict[str, Any] = report_in(netns, *argv)["targets"][0]
    return target


def report_in(netns: str, *argv: str) -> dict[str, Any]:
    done = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-m", "dotaudit", "probe", *argv,
         "--timeout", str(TIMEOUT), "--fail-on", "none", "-q"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    jsonschema.validate(report, SCHEMA)
    return report


def checks(target: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in target["checks"]}


@pytest.mark.parametrize(
    ("state", "klass", "mechanism"),
    [
        ("drop", "filtered", "firewall DROP"),
        ("reset", "refused", "no DoT service or a host firewall"),
        ("icmp", "icmp", "ICMP policy"),
        ("closed", "refused", "no DoT service or a host firewall"),
    ],
)
def test_blocked_states_classified_with_53_open(
    lab: Lab, lab_firewall: FirewallLab, state: str, klass: str, mechanism: str
) -> None:
    addr = lab_firewall.addresses[state]
    report = report_in(lab_firewall.ns.name, f"dns.test@{addr}", "--ca", str(lab.ca),
                       "--checks", "blocked-port,cert.chain")  # fmt: skip
    target = report["targets"][0]
    found = checks(target)
    assert found["reach.853"]["status"] == "fail"
    assert found["reach.853"]["evidence"]["class"] == klass
    plain = found["reach.53"]["evidence"]
    assert plain["udp53"]["answered"] and plain["tcp53"]["answered"]
    assert found["blocked-port"]["status"] == "fail"
    assert mechanism in found["blocked-port"]["evidence"]["mechanism"]
    assert "fall back to plaintext" in found["blocked-port"]["error_reason"]
    assert found["cert.chain"]["status"] == "skip"
    assert target["verdict"] == {
        "strict": "refuse",
        "opportunistic": "plaintext-fallback",
        "reasons": target["verdict"]["reasons"],
        "cause": "port-unusable",
    }
    # One incident, two findings: the refusal and the fallback; the failed reach.853 and
    # blocked-port are their evidence, not findings of their own.
    by_id = {f["id"]: f for f in report["findings"]}
    assert sorted(by_id) == ["DA-PROBE-001", "DA-PROBE-002"]
    refusal = by_id["DA-PROBE-001"]["remediation"]
    assert PORT_CLASS[klass] in refusal and "not the problem" in refusal
    assert "Fix the certificate" not in refusal
    assert mechanism in by_id["DA-PROBE-002"]["remediation"]
    if klass == "filtered":
        assert found["reach.853"]["elapsed_s"] >= TIMEOUT * 0.9
    else:
        assert found["reach.853"]["elapsed_s"] < 0.5
    if klass == "icmp":
        assert found["reach.853"]["evidence"]["errno"] in ("EHOSTUNREACH", "EACCES")


def test_open_address_is_open(lab: Lab, lab_firewall: FirewallLab) -> None:
    wanted = "blocked-port,cert.chain,cert.name"
    target = probe_in(lab_firewall.ns.name, f"dns.test@{lab_firewall.addresses['open']}",
                      "--ca", str(lab.ca), "--checks", wanted)  # fmt: skip
    found = checks(target)
    assert found["reach.853"]["evidence"]["class"] == "open"
    assert found["blocked-port"]["status"] == "pass"
    assert found["cert.chain"]["status"] == "pass"
    assert target["verdict"]["strict"] == "accept"


def test_injected_reset_told_apart_by_ttl(lab: Lab, lab_twohop: TwoHop) -> None:
    hop = lab_twohop
    report = report_in(hop.client.name, f"dns.test@{hop.server_addr}", "--ca", str(lab.ca),
                       "--checks", "blocked-port")  # fmt: skip
    found = checks(report["targets"][0])
    rst = found["rst-injection"]
    assert rst["status"] == "fail" and rst["evidence"]["injected"] is True
    replies = rst["evidence"]["replies"]
    assert replies["853"]["kind"] == "rst" and replies["853"]["ttl"] == 64  # the router's
    assert replies["53"]["kind"] == "syn-ack" and replies["53"]["ttl"] == 63  # the server's
    assert "injected by a middlebox" in found["blocked-port"]["evidence"]["mechanism"]
    # the remediation names the middlebox, and the injection stays a finding of its own
    by_id = {f["id"]: f for f in report["findings"]}
    assert "A middlebox on the path injects the resets" in by_id["DA-PROBE-001"]["remediation"]
    assert [f["evidence"]["check"] for f in report["findings"] if f["id"] == "DA-PROBE-004"] == [
        "rst-injection"
    ]
