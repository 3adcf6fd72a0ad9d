"""`analyze` on every sample capture in pcaps/ against what its scenario did.

Oracle: each capture's ``NAME.truth.json``, written by the lab scenario that recorded it
from real clients (kdig, stubby, getdns_query, openssl) and real servers. The findings it
implies must all be there, and no high finding may appear that the truth does not support.
The lab runs on loopback, so the policy treats loopback as the network (issue 4).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dotaudit.detect.base import Context
from dotaudit.model.findings import Severity
from dotaudit.model.policy import Policy
from dotaudit.pipeline import analyze
from tests.conftest import ROOT

PCAPS = ROOT / "pcaps"
TRUTHS = sorted(PCAPS.glob("*.truth.json"))
FAILED = {"syn_unanswered", "refused", "icmp_rejected", "auth_failed", "protocol_version_alert"}

Key = tuple[str, str, str]


def expected_findings(truth: dict[str, object]) -> set[Key]:
    expected: set[Key] = set()
    exchanges = truth["exchanges"]
    assert isinstance(exchanges, list)
    for i, ex in enumerate(exchanges):
        client = ex["client_addr"] or "127.0.0.1"
        server, transport, outcome = ex["server"], ex["transport"], ex["expected"]
        if transport == "udp" and ex["port"] == 53:
            expected.add(("DA-LEAK-001", client, server))
        elif transport == "tcp" and ex["port"] == 53:
            expected.add(("DA-LEAK-002", client, server))
        elif transport == "doq" and outcome == "answered":
            expected.add(("DA-DOQ-001", client, server))
        elif transport == "dot" and outcome == "answered":
            expected.add(("DA-DOT-006", client, server))
            if ex["tls_version"] == "TLS1.2":
                expected.add(("DA-DOT-003", client, server))
            if ex["sni"] is None:
                expected.add(("DA-DOT-004", client, server))
            padded = ex["response_padding"] == 468
            expected.add(("DA-PAD-002" if padded else "DA-PAD-001", client, server))
        elif transport == "dot" and outcome in FAILED:
            expected.add(("DA-DOT-001", client, server))
            later_plain = [
                later
                for later in exchanges[i + 1 :]
                if (later["client_addr"] or "127.0.0.1") == client and later["port"] == 53
            ]
            if later_plain:
                expected.add(("DA-FALLBACK-001", client, server))
    return expected


@pytest.mark.parametrize("truth_path", TRUTHS, ids=[p.name for p in TRUTHS])
def test_findings_match_truth(truth_path: Path) -> None:
    truth = json.loads(truth_path.read_text())
    capture = PCAPS / truth["capture"]
    report = analyze([capture], Context(policy=Policy(treat_loopback_as_network=True)), workers=1)
    got = {(f.id, f.client or "", f.server or "") for f in report.findings}
    expected = expected_findings(truth)
    assert expected <= got, f"missing: {sorted(expected - got)}"
    unsupported_high = {
        (f.id, f.client or "", f.server or "")
        for f in report.findings
        if f.severity is Severity.HIGH
    } - expected
    assert not unsupported_high, f"high findings the truth does not support: {unsupported_high}"


def test_there_are_sample_captures() -> None:
    assert len(TRUTHS) >= 8
