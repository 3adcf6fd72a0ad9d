"""``host_identity`` events: who uses which address, once per binding, capped.

Oracle: tshark's ARP, ICMPv6 and DHCP dissectors, read over the same capture
(``tests/pcapgen.link_capture``), with the rules of ``dissect/host_identity.py`` applied
to its fields: ARP senders other than 0.0.0.0; NS/RS sources other than :: and NA targets
that are not multicast, each with its link-layer address option, hop limit 255; DHCP
requests (host name, client identifier, ``ciaddr``) and ACKs (``yiaddr``, subnet mask);
and the Ethernet source of the first flow each address started (TCP SYN, or the UDP
datagram that made a flow).
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path

import pytest

from dotaudit.dissect.host_identity import HostIdentityTracker, is_unicast_mac, mac_text
from dotaudit.model.events import AnomalySeen, Event, HostIdentitySeen
from dotaudit.pipeline import CaptureRun
from tests import pcapgen
from tests.conftest import IN_CI

Binding = tuple[str, str | None, str, str | None, str | None, bool]


@pytest.fixture(scope="module")
def tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        reason = "tshark not installed (Debian package 'tshark'; `make test` installs it)"
        if IN_CI:
            pytest.fail(reason + " (CI=true)")
        pytest.skip(reason)
    return path


FIELDS = (
    "frame.number", "eth.src", "arp.src.hw_mac", "arp.src.proto_ipv4", "icmpv6.type",
    "icmpv6.code", "ipv6.src", "ipv6.hlim", "icmpv6.nd.na.target_address",
    "icmpv6.opt.src_linkaddr", "icmpv6.opt.target_linkaddr", "icmpv6.nd.na.flag.r",
    "icmpv6.opt.prefix", "icmpv6.opt.prefix.length", "icmpv6.opt.prefix.flag.l",
    "dhcp.type", "dhcp.option.dhcp", "dhcp.hw.mac_addr", "dhcp.ip.your", "dhcp.ip.client",
    "dhcp.option.hostname", "dhcp.option.subnet_mask", "dhcp.client_id", "ip.src", "ip.dst",
    "ipv6.dst", "tcp.flags.syn", "tcp.flags.ack", "udp.srcport", "udp.dstport",
)  # fmt: skip


def tshark_rows(tshark: str, capture: Path) -> list[dict[str, str]]:
    argv = [tshark, "-n", "-r", str(capture), "-T", "fields", "-E", "separator=|"]
    for name in FIELDS:
        argv += ["-e", name]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout
    return [dict(zip(FIELDS, line.split("|"), strict=True)) for line in out.splitlines()]


def expected_bindings(rows: list[dict[str, str]]) -> set[Binding]:
    """The link bindings the documented rules give, from tshark's fields."""
    out: set[Binding] = set()
    for row in rows:
        if row["arp.src.proto_ipv4"] and row["arp.src.proto_ipv4"] != "0.0.0.0":
            out.add((row["arp.src.hw_mac"], row["arp.src.proto_ipv4"], "arp", None, None, False))
        kind = row["icmpv6.type"]
        if kind in ("133", "135", "136", "134") and row["ipv6.hlim"] == "255":
            router = kind == "134" or (
                kind == "136" and row["icmpv6.nd.na.flag.r"] in ("1", "True")
            )
            if kind == "136":
                mac, address = row["icmpv6.opt.target_linkaddr"], row["icmpv6.nd.na.target_address"]
            else:
                mac, address = row["icmpv6.opt.src_linkaddr"], row["ipv6.src"]
            if (
                mac
                and address
                and address != "::"
                and not ipaddress.ip_address(address).is_multicast
            ):
                out.add((mac, address, "ndp", None, None, router))
                if row["icmpv6.opt.prefix.flag.l"] in ("1", "True"):
                    prefix = f"{row['icmpv6.opt.prefix']}/{row['icmpv6.opt.prefix.length']}"
                    out.add((mac, address, "ndp", None, prefix, router))
        if row["dhcp.hw.mac_addr"]:
            mac = row["dhcp.hw.mac_addr"]
            if row["dhcp.type"] == "2":  # a reply: only an ACK binds
                if row["dhcp.option.dhcp"] == "5" and row["dhcp.ip.your"] != "0.0.0.0":
                    your = row["dhcp.ip.your"]
                    network = ipaddress.ip_network(f"{your}/{row['dhcp.option.subnet_mask']}",
                                                   strict=False)  # fmt: skip
                    out.add((mac, your, "dhcp", None, str(network), False))
            else:
                client = row["dhcp.ip.client"]
                address = client if client != "0.0.0.0" else None
                out.add((mac, address, "dhcp", row["dhcp.option.hostname"] or None, None, False))
    return out


def expected_frame_sources(rows: list[dict[str, str]]) -> set[tuple[str, str]]:
    """The Ethernet source of the first flow each address started: its first TCP SYN, or
    a UDP datagram whose flow (either direction) had not been seen (the capture is shorter
    than any idle timeout)."""
    seen: set[str] = set()
    flows: set[frozenset[tuple[str, str]]] = set()
    out: set[tuple[str, str]] = set()
    for row in rows:
        src = row["ip.src"] or (row["ipv6.src"] if not row["icmpv6.type"] else "")
        dst = row["ip.dst"] or (row["ipv6.dst"] if not row["icmpv6.type"] else "")
        if row["udp.srcport"]:
            flow = frozenset({(src, row["udp.srcport"]), (dst, row["udp.dstport"])})
            started = flow not in flows
            flows.add(flow)
        else:
            started = row["tcp.flags.syn"] in ("1", "True") and row["tcp.flags.ack"] in (
                "0",
                "False",
            )
        if not src or not started or src in seen:
            continue
        seen.add(src)
        mac = bytes.fromhex(row["eth.src"].replace(":", ""))
        if is_unicast_mac(mac) and src != "0.0.0.0":
            out.add((row["eth.src"], src))
    return out


def host_events(capture: Path) -> tuple[list[HostIdentitySeen], list[AnomalySeen]]:
    run = CaptureRun(capture, hash_input=False)
    events = list(run.events())
    hosts = [e for e in events if isinstance(e, HostIdentitySeen)]
    anomalies = [e for e in events if isinstance(e, AnomalySeen)]
    return hosts, anomalies


def test_link_bindings_equal_tsharks(tshark: str, tmp_path: Path) -> None:
    capture = pcapgen.link_capture(tmp_path / "link.pcap")
    rows = tshark_rows(tshark, capture)
    hosts, anomalies = host_events(capture)
    assert anomalies == []
    ours = {
        (e.mac, e.address, e.source, e.hostname, e.prefix, e.router)
        for e in hosts
        if e.source != "frame"
    }
    assert ours == expected_bindings(rows)
    frames = {(e.mac, str(e.address)) for e in hosts if e.source == "frame"}
    assert frames == expected_frame_sources(rows)
    # Each binding once; the DUID-based client identifier travels with the host name.
    assert len(hosts) == len({(e.mac, e.address, e.source, e.hostname, e.prefix) for e in hosts})
    dhcp = [e for e in hosts if e.source == "dhcp" and e.hostname]
    assert [e.client_id for e in dhcp] == ["ff00000001000100012a2b2c2d"]


def test_traps_bind_nothing(tmp_path: Path) -> None:
    """An ARP probe, duplicate address detection, a forwarded NS and a multicast NA
    target state nothing about their sender; a DHCP OFFER assigns nothing."""
    capture = pcapgen.link_capture(tmp_path / "link.pcap")
    hosts, _ = host_events(capture)
    addresses = {e.address for e in hosts}
    assert "0.0.0.0" not in addresses and "::" not in addresses
    assert "2001:db8:9::b" not in addresses  # hop limit 64: forwarded
    assert "ff02::1" not in addresses and "2001:db8:1::b" not in addresses
    assert "192.0.2.99" not in addresses  # offered, never acknowledged


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)


ARP_TEMPLATE = bytes.fromhex("0001080006040001") + bytes(20)


def arp_from(host: int) -> bytes:
    body = bytearray(ARP_TEMPLATE)
    body[8:14] = bytes([2, 0, 0, 0, host >> 8, host & 0xFF])
    body[14:18] = bytes([10, 0, host >> 8, host & 0xFF])
    return bytes(body)


@pytest.mark.parametrize("limit", [1, 3])
def test_bindings_are_capped_and_what_is_refused_is_counted(limit: int) -> None:
    sink = Sink()
    tracker = HostIdentityTracker("f.pcap", sink, limit=limit)
    for host in range(1, limit + 1):  # exactly at the cap: everything recorded
        tracker.arp(host, float(host), arp_from(host))
    assert [type(e) for e in sink.events] == [HostIdentitySeen] * limit
    tracker.arp(99, 99.0, arp_from(1))  # a binding already known costs no room
    assert len(sink.events) == limit and tracker.refused == 0
    for host in range(limit + 1, limit + 1002):  # one past the cap, then 1000 more
        tracker.arp(host, float(host), arp_from(host))
    anomalies = [e for e in sink.events if isinstance(e, AnomalySeen)]
    assert tracker.refused == 1001
    assert [a.what for a in anomalies] == ["host_identity_table_full"] * 2
    assert anomalies[0].detail.startswith("1 host identity bindings beyond the first")
    assert anomalies[1].detail.startswith("1001 host identity bindings")


def test_malformed_messages_are_anomalies_not_bindings() -> None:
    sink = Sink()
    tracker = HostIdentityTracker("f.pcap", sink)
    tracker.arp(1, 1.0, ARP_TEMPLATE[:20])
    ns = bytes([135, 0, 0, 0]) + bytes(4) + bytes(16) + bytes([1, 0]) + bytes(6)  # length 0
    tracker.ndp(2, 2.0, b"\x20" + bytes(15), b"\xff" + bytes(15), 255, ns)
    tracker.dhcp(3, 3.0, "0.0.0.0", 68, "255.255.255.255", 67, b"\x01\x01\x06" + bytes(30))
    whats = [e.what for e in sink.events if isinstance(e, AnomalySeen)]
    assert whats == ["arp_malformed", "ndp_malformed", "dhcp_malformed"]
    assert not [e for e in sink.events if isinstance(e, HostIdentitySeen)]


def test_group_and_zero_macs_are_nobodys() -> None:
    assert is_unicast_mac(bytes.fromhex("020000000001"))
    assert not is_unicast_mac(bytes.fromhex("010000000001"))  # group bit
    assert not is_unicast_mac(bytes(6))  # loopback captures' Ethernet header
    assert not is_unicast_mac(bytes(5))
    assert mac_text(bytes.fromhex("0a1b2c3d4e5f")) == "0a:1b:2c:3d:4e:5f"


def test_sharded_events_equal_the_serial_ones(tmp_path: Path) -> None:
    """host_identity comes from shard 0's decoder alone, where a single pass puts it."""
    from dotaudit.parallel_events import ShardedRun

    capture = pcapgen.link_capture(tmp_path / "link.pcap")
    serial = "".join(CaptureRun(capture, hash_input=False).lines())
    for shards in (2, 3):
        assert "".join(ShardedRun(capture, shards, None).lines()) == serial
