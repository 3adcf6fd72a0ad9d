"""`analyze` on every sample capture in pcaps/ against what its scenario did.

Oracle: each capture's ``NAME.truth.json``, written by the lab scenario that recorded it
from real clients (kdig, stubby, getdns_query, openssl, python for mDNS/LLMNR) and real
servers, and, for EDNS Client Subnet (which the truth format does not record), tshark's
reading of the capture. The findings they imply are exactly the findings `analyze` gives,
at every severity. The lab runs on loopback, so the policy treats loopback as the network.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from dotaudit.detect.base import Context
from dotaudit.model.policy import Policy
from dotaudit.pipeline import analyze
from tests.conftest import ROOT

PCAPS = ROOT / "pcaps"
TRUTHS = sorted(PCAPS.glob("*.truth.json"))
FAILED = {"syn_unanswered", "refused", "icmp_rejected", "auth_failed", "protocol_version_alert"}

Key = tuple[str, str, str]
MDNS_PORT, LLMNR_PORT = 5353, 5355


def multicast_name_leaks(ex: dict[str, object]) -> bool:
    """RFC 6762 §3: mDNS is for names under .local; RFC 4795 §2: LLMNR for single-label
    names. A query outside that leaks a DNS name to the whole link (DA-LEAK-005)."""
    queries = ex["queries"]
    assert isinstance(queries, list)
    names = [str(q["qname"]).rstrip(".").lower() for q in queries]
    if ex["port"] == MDNS_PORT:
        return any(n != "local" and not n.endswith(".local") for n in names)
    if ex["port"] == LLMNR_PORT:
        return any("." in n for n in names)
    return False


def tshark_ecs_senders(capture: Path) -> set[Key]:
    """Clients that send EDNS Client Subnet with a non-zero source prefix (RFC 7871 §7.1.2:
    prefix 0 is the opt-out) in cleartext queries, as tshark reads them (DA-LEAK-006)."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed (make debs)")
    done = subprocess.run(
        ["tshark", "-n", "-r", str(capture), "-Y",
         "dns.flags.response == 0 && dns.opt.client.netmask > 0",
         "-T", "fields", "-e", "ip.src", "-e", "ipv6.src", "-e", "ip.dst", "-e", "ipv6.dst"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    senders: set[Key] = set()
    for line in done.stdout.splitlines():
        src4, src6, dst4, dst6 = line.split("\t")
        senders.add(("DA-LEAK-006", src4 or src6, dst4 or dst6))
    return senders


def expected_findings(truth: dict[str, object]) -> set[Key]:
    expected: set[Key] = set()
    exchanges = truth["exchanges"]
    assert isinstance(exchanges, list)
    for i, ex in enumerate(exchanges):
        client = ex["client_addr"] or "127.0.0.1"
        server, transport, outcome = ex["server"], ex["transport"], ex["expected"]
        if transport == "udp" and ex["port"] in (MDNS_PORT, LLMNR_PORT):
            if multicast_name_leaks(ex):
                expected.add(("DA-LEAK-005", client, ""))
        elif transport == "udp" and ex["port"] == 53:
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
    got = sorted((f.id, f.client or "", f.server or "") for f in report.findings)
    expected = expected_findings(truth) | tshark_ecs_senders(capture)
    assert len(got) == len(set(got)), "one finding per kind, client and server"
    assert set(got) == expected, (
        f"missing: {sorted(expected - set(got))}; unsupported: {sorted(set(got) - expected)}"
    )


def test_there_are_sample_captures() -> None:
    assert len(TRUTHS) >= 8
