"""The office capture (pcaps/09-office, scenario 9) and the network that records it.

Oracles: the office's addressing plan (``tests.lab.office_net``: documentation ranges
only, the router one hop from every server), the truth file the scenario wrote, and
tshark read live where it is installed. ``tests/test_lab/test_pcaps_truth.py`` already
checks every exchange of the truth file against ``dotaudit events``; these tests cover
what only this capture has: multicast name queries, ECS, the router's own resets, and
the network being sealed off from the host.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.utils import PcapReader

from tests.lab import office_net
from tests.lab.fixtures import lab_unavailable
from tests.lab.lab import missing_prerequisite
from tests.lab.ports import netns_socket
from tests.lab.procs import LabError, ProcessManager
from tests.test_lab.test_pcaps_truth import events

ROOT = Path(__file__).resolve().parents[2]
PCAP = ROOT / "pcaps" / "09-office.pcap"
TRUTH = ROOT / "pcaps" / "09-office.truth.json"
DOC_RANGES = [
    ipaddress.ip_network(n)
    for n in ("198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "fe80::/10", "224.0.0.0/4",
              "ff00::/8", "0.0.0.0/32", "::/128")
]  # fmt: skip


@functools.cache
def truth() -> dict[str, Any]:
    if not TRUTH.exists():
        pytest.skip("pcaps/09-office.truth.json not recorded (make pcaps)")
    data: dict[str, Any] = json.loads(TRUTH.read_text())
    return data


def exchanges(**match: object) -> list[dict[str, Any]]:
    return [e for e in truth()["exchanges"] if all(e[k] == v for k, v in match.items())]


def office_events(kind: str) -> list[dict[str, Any]]:
    return [e for e in events(PCAP) if e["type"] == kind]


def tshark_fields(display: str, fields: list[str]) -> list[list[str]]:
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed (make debs)")
    argv = ["tshark", "-n", "-r", str(PCAP), "-Y", display, "-T", "fields", "-E", "separator=|"]
    for f in ["frame.number", *fields]:
        argv += ["-e", f]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
    return [line.split("|") for line in out.splitlines() if line]


def test_capture_is_small_short_and_on_documentation_addresses() -> None:
    truth()
    assert PCAP.stat().st_size < 500 * 1024
    stamps, outside = [], set()
    with PcapReader(str(PCAP)) as reader:
        for pkt in reader:
            stamps.append(float(pkt.time))
            layer = pkt.getlayer(IP) or pkt.getlayer(IPv6)
            if layer is None:
                continue  # ARP: the LAN's own chatter
            for addr in (layer.src, layer.dst):
                ip = ipaddress.ip_address(addr)
                if not any(ip.version == n.version and ip in n for n in DOC_RANGES):
                    outside.add(addr)
    assert stamps and max(stamps) - min(stamps) < 60
    assert not outside, f"addresses outside the documentation ranges: {sorted(outside)}"


def test_scenario_mix_is_all_there() -> None:
    """The capture holds every behaviour the office scenario was built to show."""
    assert exchanges(client="stubby", transport="dot", query_padding=128, response_padding=468)
    assert exchanges(client="kdig", transport="dot", auth="strict", query_padding=128)
    assert exchanges(client="kdig", transport="dot", auth="pin", sni=None)
    assert exchanges(transport="udp", port=53, client_addr="198.51.100.23")
    assert exchanges(transport="tcp", port=53, client_addr="198.51.100.23")
    assert exchanges(transport="dot", query_padding=None, response_padding=None)
    assert exchanges(transport="dot", tls_version="TLS1.2")
    assert exchanges(transport="doq", alpn=["doq"])
    assert {e["sni"] for e in exchanges(transport="https")} == {"intranet.example", "www.example"}
    assert {e["port"] for e in exchanges(expected="sent")} == {5353, 5355}
    for blocked in ("syn_unanswered", "refused"):
        (attempt,) = exchanges(transport="dot", expected=blocked)
        later = truth()["exchanges"][truth()["exchanges"].index(attempt) + 1]
        assert later["client_addr"] == attempt["client_addr"]
        assert (later["server"], later["port"], later["queries"]) == (
            attempt["server"], 53, attempt["queries"],
        )  # fmt: skip


def test_multicast_queries_match_tshark() -> None:
    theirs = {
        (int(r[0]), r[1], r[2])
        for r in tshark_fields("mdns || llmnr", ["dns.qry.name", "udp.dstport"])
    }
    ours = {
        (m["frame"], m["qname"], str(m["dport"]))
        for m in office_events("dns")
        if m["service"] in ("mdns", "llmnr")
    }
    assert theirs and ours == theirs
    sent = {(q["qname"], e["port"]) for e in exchanges(expected="sent") for q in e["queries"]}
    assert {(name, int(port)) for _, name, port in theirs} == sent


def test_client_subnet_matches_tshark() -> None:
    rows = tshark_fields(
        "dns.opt.code == 8 && dns.flags.response == 0",
        ["ip.src", "dns.opt.client.addr4", "dns.opt.client.netmask"],
    )
    theirs = {(r[1], f"{r[2]}/{r[3]}") for r in rows}
    ours = {
        (m["src"], m["edns"]["ecs"])
        for m in office_events("dns")
        if m["qr"] == "query" and m["edns"] and m["edns"]["ecs"]
    }
    assert theirs == ours == {("198.51.100.28", "198.51.100.0/24")}


def test_router_reset_is_one_hop_closer_than_the_server() -> None:
    """The router injects the reset itself: TTL 64 at its LAN side, while everything the
    server sends has crossed the router once (TTL 63)."""
    (attempt,) = exchanges(transport="dot", expected="refused")
    conns = office_events("connection")
    reset = [c for c in conns if c["dst"] == attempt["server"] and c["dport"] == 853]
    plain = [c for c in conns if c["dst"] == attempt["server"] and c["dport"] == 53]
    assert [c["outcome"] for c in reset] == ["refused"]
    assert reset[0]["rst_ttl"] == 64
    assert plain and {c["server_ttl"] for c in plain} == {63}


def test_dropped_dot_is_a_syn_and_its_retransmit() -> None:
    (attempt,) = exchanges(transport="dot", expected="syn_unanswered")
    conns = [
        c
        for c in office_events("connection")
        if c["dst"] == attempt["server"] and c["dport"] == 853
    ]
    assert [(c["outcome"], c["syn_retransmits"], c["packets_rev"]) for c in conns] == [
        ("syn_unanswered", 1, 0)
    ]


# The network itself, built for real (root, iproute2, nftables).


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[office_net.OfficeNet]:
    reason = missing_prerequisite()
    if reason:
        lab_unavailable(reason)
    pm = ProcessManager(log_dir=tmp_path_factory.mktemp("office-logs"))
    try:
        net = office_net.build_office(pm)
    except LabError as exc:
        pm.close()
        lab_unavailable(str(exc))
        raise
    yield net
    pm.close()


@pytest.mark.lab
def test_office_is_sealed_and_routes_through_the_router(office: office_net.OfficeNet) -> None:
    office_net.assert_sealed(office.namespaces())
    for ns in office.namespaces():
        assert not ns.run(["ip", "route", "show", "default"]).strip()
        assert not ns.run(["ip", "-6", "route", "show", "default"]).strip()
    alice = office.client("alice")
    # Nothing listens on port 9: a reset coming back proves the path works both ways.
    with netns_socket(alice.name, socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(3)
        with pytest.raises(ConnectionRefusedError):
            sock.connect((office_net.PADDED, 9))
    trace = alice.run(["ip", "route", "get", office_net.PADDED])
    assert f"via {office_net.ROUTER_LAN[0]}" in trace


@pytest.mark.lab
@pytest.mark.parametrize(
    "route",
    [["default", "via", "198.51.100.1"], ["192.0.2.0/24", "via", "198.51.100.1"]],
    ids=["default", "outside"],
)
def test_seal_check_catches_a_route_out(office: office_net.OfficeNet, route: list[str]) -> None:
    ns = office.client("heidi")
    ns.run(["ip", "route", "add", *route])
    try:
        with pytest.raises(LabError, match=r"default route|leaves the office"):
            office_net.assert_sealed([ns])
    finally:
        ns.run(["ip", "route", "del", *route])
    office_net.assert_sealed([ns])
