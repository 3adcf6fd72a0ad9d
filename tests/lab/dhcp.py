"""A real DHCP exchange carrying DNR options (RFC 9463): dnsmasq offers DHCPv4 option
162 and DHCPv6 option 144 in one namespace, ISC dhclient takes a lease in another and
writes its lease files as it would on any Debian host.

dhclient runs with ``-sf /bin/true``: its script would otherwise rewrite resolv.conf and
routes (and ``ip netns exec`` shares the host's /etc). The options are built field by
field after RFC 9463's figures (§4.1 Figure 1, §5.1 Figures 4 and 5).
"""

from __future__ import annotations

import ipaddress
import shutil
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.lab.netns import Netns, veth
from tests.lab.procs import LabError, ProcessManager

SERVER4, SERVER6 = "192.0.2.1", "2001:db8:162::1"
DNR_ADN = "dns.test"
DNR_V4_ADDRESS = "192.0.2.53"
DNR_V6_ADDRESS = "2001:db8:162::53"
BINARIES = ("dnsmasq", "dhclient")


def _adn(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"


def _alpn(*ids: str) -> bytes:
    value = b"".join(bytes([len(i)]) + i.encode() for i in ids)
    return struct.pack("!HH", 1, len(value)) + value


def v4_option(priority: int, adn: str, addresses: list[str], alpn: tuple[str, ...]) -> bytes:
    """One DNR Instance Data of OPTION_V4_DNR (RFC 9463 §5.1, Figure 5)."""
    name = _adn(adn)
    addrs = b"".join(ipaddress.IPv4Address(a).packed for a in addresses)
    body = struct.pack("!H", priority) + bytes([len(name)]) + name
    body += bytes([len(addrs)]) + addrs + _alpn(*alpn)
    return struct.pack("!H", len(body)) + body


def v6_option(priority: int, adn: str, addresses: list[str], alpn: tuple[str, ...]) -> bytes:
    """The option-data of OPTION_V6_DNR (RFC 9463 §4.1, Figure 1)."""
    name = _adn(adn)
    addrs = b"".join(ipaddress.IPv6Address(a).packed for a in addresses)
    return (
        struct.pack("!HH", priority, len(name))
        + name
        + struct.pack("!H", len(addrs))
        + addrs
        + _alpn(*alpn)
    )


def _hex(data: bytes) -> str:
    return ":".join(f"{b:02x}" for b in data)


@dataclass
class DhcpLeases:
    v4: Path
    v6: Path


def missing() -> str | None:
    for binary in BINARIES:
        if shutil.which(binary) is None:
            return f"{binary} not installed (make debs: dnsmasq-base, isc-dhcp-client)"
    return None


def take_leases(pm: ProcessManager, base: Path) -> DhcpLeases:
    """Run the exchange once; returns the lease files dhclient wrote."""
    server, client = Netns.create(pm, "dhcp-sv"), Netns.create(pm, "dhcp-cl")
    veth(server, "eth0", client, "eth0")
    server.run(["ip", "addr", "add", f"{SERVER4}/24", "dev", "eth0"])
    server.run(["ip", "addr", "add", f"{SERVER6}/64", "dev", "eth0", "nodad"])
    v4 = v4_option(1, DNR_ADN, [DNR_V4_ADDRESS], ("dot",))
    v6 = v6_option(2, DNR_ADN, [DNR_V6_ADDRESS], ("doq",))
    work = base / "dhcp"
    work.mkdir(parents=True, exist_ok=True)
    dnsmasq = server.start(
        "dnsmasq",
        [
            "dnsmasq",
            "--no-daemon",
            "--port=0",
            "--interface=eth0",
            "--bind-interfaces",
            "--dhcp-range=192.0.2.50,192.0.2.60,1h",
            "--dhcp-range=2001:db8:162::100,2001:db8:162::1ff,64,1h",
            f"--dhcp-option-force=162,{_hex(v4)}",
            f"--dhcp-option-force=option6:144,{_hex(v6)}",
            f"--dhcp-leasefile={work / 'dnsmasq.leases'}",
            "--log-dhcp",
        ],
    )
    empty = work / "dhclient.conf"
    empty.write_text("")  # no request list of our own: dhclient keeps what it is sent
    leases = DhcpLeases(work / "dhclient.leases", work / "dhclient6.leases")
    try:
        _wait_link_local(client)
        for flag, lease in (("-4", leases.v4), ("-6", leases.v6)):
            argv = client.argv(
                [
                    "dhclient",
                    flag,
                    "-1",
                    "-cf",
                    str(empty),
                    "-lf",
                    str(lease),
                    "-pf",
                    str(lease.with_suffix(".pid")),
                    "-sf",
                    "/bin/true",
                    "eth0",
                ]
            )
            done = subprocess.run(argv, capture_output=True, text=True, timeout=40, check=False)
            if done.returncode != 0 or not lease.exists():
                raise LabError(f"dhclient {flag} got no lease: {done.stderr[-500:]}")
            _stop_dhclient(lease.with_suffix(".pid"))
    finally:
        pm.stop(dnsmasq)
    return leases


def _wait_link_local(ns: Netns, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while ns.run(["ip", "-6", "addr", "show", "dev", "eth0", "tentative"]).strip():
        if time.monotonic() > deadline:
            raise LabError("the client's link-local address stays tentative")
        time.sleep(0.1)


def _stop_dhclient(pidfile: Path) -> None:
    # dhclient -1 stays in the background to renew once it has a lease: stop that one, by
    # the PID it wrote itself.
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    subprocess.run(["kill", str(pid)], capture_output=True, check=False)
