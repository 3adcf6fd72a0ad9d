"""The survey on a hostile network (tests/lab/hostile_net.py), the prober run inside the
client's namespace as a user would: the three clauses the router earns, each with its
evidence, within the connection budget; and ``dotaudit report`` merging the result with
an ``analyze`` report of a capture taken on that network meanwhile.

Oracles: the router's own rules (nftables: a reset on 853 to BLOCKED_DOT sent by the
router, TTL 64 against the server's 63; a DNAT of HIJACKED_53's port 53 to the router's
resolver, identity "hotel-resolver" against the real one's "resolver-inet"; the SNI
filter's log line naming the SNI it reset), and the schema.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dotaudit.probe.discovery.survey import MAX_CONNECTIONS
from tests.conftest import ROOT
from tests.lab.capture import Capture
from tests.lab.hostile_net import (
    BLOCKED_DOT,
    HIJACKED_53,
    HOTEL_IDENTITY,
    INET_IDENTITY,
    ROUTER_LAN,
    SNI_BLOCKED,
    HostileNet,
    known_file,
)
from tests.lab.lab import Lab
from tests.test_cli.command import SCHEMA, dotaudit
from tests.test_probe.lab_probe import QNAME

pytestmark = pytest.mark.lab


def probe_in(netns: str, *argv: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            netns,
            sys.executable,
            "-m",
            "dotaudit",
            "probe",
            *argv,
            "--timeout",
            "2",
            "--qname",
            QNAME,
            "--fail-on",
            "none",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    jsonschema.validate(report, SCHEMA)
    return report


@pytest.fixture(scope="module")
def hostile_run(
    lab: Lab, lab_hostile: HostileNet, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], Path]:
    base = tmp_path_factory.mktemp("hostile")
    lease = base / "none.lease"
    lease.write_text("")
    report = probe_in(
        lab_hostile.client.name,
        "--discover",
        "--resolv-conf",
        str(lab_hostile.resolv_conf(base)),
        "--known",
        str(known_file(base)),
        "--ca",
        str(lab.ca),
        "--lease",
        str(lease),
    )
    path = base / "network.json"
    path.write_text(json.dumps(report))
    return report, path


def clauses(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["transport"], c["kind"]): c for c in report["network"][0]["clauses"]}


def test_dot_blocked_by_injected_resets_with_the_ttls(
    hostile_run: tuple[dict[str, Any], Path],
) -> None:
    clause = clauses(hostile_run[0])[("dot", "blocked")]
    assert clause["text"] == f"blocks DoT to {BLOCKED_DOT} by RST injection (TTL 64 vs 63)"
    [evidence] = clause["evidence"]
    ttl = evidence["ttl"]
    assert ttl["injected"] is True and ttl["rst_ttl"] == 64
    assert ttl["replies"]["853"]["kind"] == "rst"
    assert ttl["reference_ttls"] == {"53": 63, "443": 63}


def test_port_53_redirected_to_the_router_with_the_identities(
    hostile_run: tuple[dict[str, Any], Path],
) -> None:
    clause = clauses(hostile_run[0])[("plain", "hijacked")]
    assert clause["text"].startswith(
        f"transparently redirects port 53 for {HIJACKED_53} to {ROUTER_LAN}"
    )
    [evidence] = clause["evidence"]
    assert evidence["redirected_to"] == ROUTER_LAN
    assert (
        f"NSID '{HOTEL_IDENTITY}' over port 53, '{INET_IDENTITY}' over DoT"
        in (evidence["differences"])
    )
    # the system resolver the redirect goes to, as discovery saw it on its own port 53
    [system] = hostile_run[0]["system_resolvers"]
    assert system["identity"]["nsid"] == HOTEL_IDENTITY


def test_doh_blocked_by_sni(
    lab_hostile: HostileNet, hostile_run: tuple[dict[str, Any], Path]
) -> None:
    clause = clauses(hostile_run[0])[("doh", "blocked")]
    assert clause["text"] == (
        f"blocks DoH to {SNI_BLOCKED} by SNI (a reset right after the ClientHello naming dns.test)"
    )
    [evidence] = clause["evidence"]
    assert evidence["how"] == "SNI filtering"
    # The middlebox's own account: it reset a ClientHello naming dns.test for SNI_BLOCKED.
    sni_filter = next(p for p in lab_hostile.procs if p.name.endswith("sni-filter"))
    assert sni_filter.popen.stdout is not None
    fd = sni_filter.popen.stdout.fileno()
    os.set_blocking(fd, False)
    try:
        log = os.read(fd, 65536).decode()
    except BlockingIOError:
        log = ""
    assert f"RESET {SNI_BLOCKED}:443 sni=dns.test" in log


def test_what_passes_is_said_too(hostile_run: tuple[dict[str, Any], Path]) -> None:
    found = clauses(hostile_run[0])
    assert found[("dot", "passes")]["text"] == f"lets DoT through to {HIJACKED_53}, {SNI_BLOCKED}"
    assert found[("doh", "passes")]["text"] == f"lets DoH through to {BLOCKED_DOT}"
    assert found[("doq", "passes")]["text"] == "lets DoQ through"
    assert {f["id"] for f in hostile_run[0]["findings"]} == {
        "DA-NET-001",
        "DA-NET-002",
        "DA-NET-004",
    }


def test_the_survey_keeps_its_connection_budget(hostile_run: tuple[dict[str, Any], Path]) -> None:
    rows = {r["address"]: r for r in hostile_run[0]["survey"]}
    assert set(rows) == {BLOCKED_DOT, HIJACKED_53, SNI_BLOCKED}
    for row in rows.values():
        assert row["connections"]["opened"] <= MAX_CONNECTIONS
    # the resolver offering all three transports uses the whole budget, no more
    assert rows[BLOCKED_DOT]["connections"]["opened"] == MAX_CONNECTIONS == 3
    # the reset DoT cost raw SYN probes (half-open, as root) instead of connections
    assert rows[BLOCKED_DOT]["connections"]["raw_probes"] == 3


def test_report_merges_the_network_with_a_capture_of_it(
    lab: Lab,
    lab_hostile: HostileNet,
    lab_capture: Callable[..., Capture],
    tmp_path: Path,
) -> None:
    capture = lab_capture("hostile-client", interface="eth0", netns=lab_hostile.client.name)
    lease = tmp_path / "none.lease"
    lease.write_text("")
    network = probe_in(
        lab_hostile.client.name,
        "--resolv-conf",
        str(lab_hostile.resolv_conf(tmp_path)),
        "--known",
        str(known_file(tmp_path)),
        "--ca",
        str(lab.ca),
        "--lease",
        str(lease),
    )
    pcap = capture.stop()
    network_json = tmp_path / "network.json"
    network_json.write_text(json.dumps(network))
    analyzed = tmp_path / "capture.json"
    done = dotaudit("analyze", str(pcap), "-o", str(analyzed), "-q", "--fail-on", "none")
    assert done.returncode == 0, done.stderr
    merged_json, merged_html = tmp_path / "audit.json", tmp_path / "audit.html"
    for out in (merged_json, merged_html):
        done = dotaudit(
            "report", str(analyzed), str(network_json), "-o", str(out), "-q", "--fail-on", "none"
        )
        assert done.returncode == 0, done.stderr
    merged = json.loads(merged_json.read_text())
    jsonschema.validate(merged, SCHEMA)
    assert merged["kind"] == "combined"
    assert merged["network"] == network["network"] and merged["survey"] == network["survey"]
    # the capture saw the plaintext port-53 queries the survey sent to the redirected resolver
    servers = {row["server"] for row in merged["plaintext_dns"]}
    assert HIJACKED_53 in servers
    body = merged_html.read_text()
    assert body.index('id="network"') < body.index('id="scope"') < body.index('id="plaintext"')
    assert "transparently redirects port 53" in body
