"""Nothing the lab does leaves loopback or its namespaces.

tcpdump listens on every interface of the host namespace except ``lo`` while every
client (kdig, stubby, getdns_query, the DoQ client) talks to every lab service; any
packet that matches lab addresses or DNS ports there is a leak.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from pathlib import Path

import dns.message
import pytest
from scapy.utils import rdpcap

from tests.lab.capture import Capture
from tests.lab.clients import (
    STUBBY_LISTEN,
    getdns_argv,
    getdns_ok,
    kdig,
    run_getdns,
    stubby_argv,
    stubby_config,
)
from tests.lab.lab import Lab
from tests.lab.netns import FirewallLab, TwoHop
from tests.lab.pki import HOSTNAME
from tests.lab.ports import wait_tcp

pytestmark = pytest.mark.lab


def _outside_interfaces() -> list[str]:
    out = []
    for dev in sorted(Path("/sys/class/net").iterdir()):
        flags = int((dev / "flags").read_text(), 16)
        if dev.name != "lo" and flags & 0x1:  # IFF_UP
            out.append(dev.name)
    return out


def _system_resolvers() -> list[str]:
    try:
        text = Path("/etc/resolv.conf").read_text()
    except OSError:
        return []
    return [ln.split()[1] for ln in text.splitlines() if ln.startswith("nameserver ")]


def leak_filter() -> str:
    parts = [
        "net 127.0.0.0/8",
        "host ::1",
        "net 198.51.100.0/24",
        "net 203.0.113.0/24",
        "net 2001:db8::/32",
        "port 853",
        "port 5353",
    ]
    # Plain DNS to anything but the machine's own resolver (the package tools need it).
    dns53 = "port 53" + "".join(f" and not host {ns}" for ns in _system_resolvers())
    return " or ".join(f"({p})" for p in [*parts, dns53])


def _doq_query(lab: Lab) -> bytes:
    from aioquic.asyncio.client import connect
    from aioquic.quic.configuration import QuicConfiguration

    async def ask() -> bytes:
        cfg = QuicConfiguration(is_client=True, alpn_protocols=["doq"], server_name=HOSTNAME)
        cfg.load_verify_locations(str(lab.ca))
        async with connect(lab["doq"].address, 853, configuration=cfg) as client:
            reader, writer = await client.create_stream()
            wire = dns.message.make_query("www.lab.test", "A", id=0).to_wire()
            writer.write(struct.pack("!H", len(wire)) + wire)
            writer.write_eof()
            return await asyncio.wait_for(reader.read(), 5)

    return asyncio.run(ask())


def test_no_lab_packet_leaves_loopback(
    lab: Lab,
    lab_firewall: FirewallLab,
    lab_twohop: TwoHop,
    lab_capture: Callable[..., Capture],
    tmp_path: Path,
) -> None:
    interfaces = _outside_interfaces()
    if not interfaces:
        pytest.skip("not applicable: no non-loopback interface is up, so nothing could leak")
    guards = [lab_capture(f"guard-{i}", bpf=leak_filter(), interface=i) for i in interfaces]
    lo = lab_capture("guard-lo", bpf="port 853 or port 53")

    answered = 0
    for res in lab.resolvers.values():
        if res.transport == "dot":
            answered += kdig(res.address, "www.lab.test", ca=lab.ca, hostname=HOSTNAME).ok
            answered += kdig(res.address, "www.lab.test").ok
        if res.plain_port:
            answered += kdig(res.address, "www.lab.test", port=53, tls=False).ok
    assert _doq_query(lab)
    for addr in lab_firewall.addresses.values():
        kdig(addr, "www.lab.test", netns=lab_firewall.ns.name, timeout=1)
    kdig(lab_twohop.server_addr, "www.lab.test", netns=lab_twohop.client.name)

    conf = stubby_config(tmp_path / "stubby.yml", lab["padded"].address, lab.ca, HOSTNAME)
    stubby = lab.pm.start("stubby-guard", stubby_argv(conf))
    try:
        wait_tcp(STUBBY_LISTEN, 53, 5, alive=stubby.running)
        assert kdig(STUBBY_LISTEN, "mail.lab.test", port=53, tls=False).ok
    finally:
        lab.pm.stop(stubby)
    for strict in (True, False):
        done = run_getdns(getdns_argv(lab["padded"].address, "www.lab.test",
                                      auth_name=HOSTNAME, strict=strict), lab.ca)  # fmt: skip
        assert getdns_ok(done), done.stdout + done.stderr

    assert answered >= 20  # the traffic really happened...
    assert len(rdpcap(str(lo.stop()))) > 100  # ...and the same filter style sees it on lo
    for iface, guard in zip(interfaces, guards, strict=True):
        leaked = rdpcap(str(guard.stop()))
        assert len(leaked) == 0, f"{len(leaked)} lab packets on {iface}: {leaked.summary()}"
