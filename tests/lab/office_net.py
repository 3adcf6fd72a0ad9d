"""The office network of scenario 9, built from network namespaces and veth pairs only.

    pc21 ... pc28 --(veth)-- lan (bridge br0, the office switch) --(veth)-- router
    router --(veth)-- inet (resolvers, DoQ server, web server)

Documentation-range addresses only (RFC 5737, RFC 3849): the LAN is 198.51.100.0/24 and
2001:db8:1::/64, the "internet" 203.0.113.0/24 and 2001:db8:53::/64. Every veth end is
born inside its namespace, nothing is bridged to the host, and no namespace has a
default route: ``assert_sealed`` checks that before any traffic flows.
"""

from __future__ import annotations

import ipaddress
import json
import time
from dataclasses import dataclass, field

from tests.lab.netns import Netns, veth
from tests.lab.procs import LabError, ProcessManager

LAN4, LAN6 = "198.51.100.0/24", "2001:db8:1::/64"
NET4, NET6 = "203.0.113.0/24", "2001:db8:53::/64"
ROUTER_LAN = ("198.51.100.1", "2001:db8:1::1")
ROUTER_WAN = ("203.0.113.1", "2001:db8:53::1")
# Prefixes a route may point at: the two networks, link-local and multicast.
ALLOWED = tuple(
    ipaddress.ip_network(n)
    for n in (LAN4, LAN6, NET4, NET6, "fe80::/64", "224.0.0.0/4", "ff00::/8")
)


@dataclass(frozen=True, slots=True)
class Client:
    """One office machine: its own namespace, one IPv4 and one IPv6 address."""

    role: str
    v4: str
    v6: str
    what: str


CLIENTS = (
    Client("alice", "198.51.100.21", "2001:db8:1::21", "stubby, strict padded DoT; HTTPS"),
    Client("bob", "198.51.100.22", "2001:db8:1::22", "kdig padded DoT, pin-only DoT; HTTPS"),
    Client("carol", "198.51.100.23", "2001:db8:1::23", "plaintext UDP/TCP 53; mDNS, LLMNR"),
    Client("dave", "198.51.100.24", "2001:db8:1::24", "DoT dropped, then plaintext"),
    Client("erin", "198.51.100.25", "2001:db8:1::25", "DoT reset, then plaintext"),
    Client("frank", "198.51.100.26", "2001:db8:1::26", "unpadded DoT, TLS 1.2 DoT; HTTPS"),
    Client("grace", "198.51.100.27", "2001:db8:1::27", "DNS over QUIC"),
    Client("heidi", "198.51.100.28", "2001:db8:1::28", "EDNS Client Subnet in plaintext"),
)

# The "internet" side: each service on its own address, as a real path would show.
PADDED = "203.0.113.53"
PADDED6 = "2001:db8:53::53"
UNPADDED = "203.0.113.54"
TLS12 = "203.0.113.55"
DOQ = "203.0.113.56"
DROPPED = "203.0.113.57"
RESET = "203.0.113.58"
WEB = "203.0.113.80"
INET_ADDRESSES = (PADDED, UNPADDED, TLS12, DOQ, DROPPED, RESET, WEB, PADDED6)

ROUTER_RULES = f"""\
table inet office_rt {{
  chain forward {{
    type filter hook forward priority 0; policy accept;
    ip daddr {DROPPED} tcp dport 853 drop
    ip daddr {RESET} tcp dport 853 reject with tcp reset
  }}
}}
"""


@dataclass
class OfficeNet:
    lan: Netns
    router: Netns
    inet: Netns
    clients: dict[str, Netns] = field(default_factory=dict)
    capture_if: str = "lan0"
    """The router's LAN-side interface: where the uplink tap sits."""

    def client(self, role: str) -> Netns:
        return self.clients[role]

    def namespaces(self) -> list[Netns]:
        return [self.lan, self.router, self.inet, *self.clients.values()]


def _addr(ns: Netns, address: str, prefix: int, dev: str) -> None:
    # nodad: an address still doing duplicate detection cannot be bound yet.
    extra = ["nodad"] if ":" in address else []
    ns.run(["ip", "addr", "add", f"{address}/{prefix}", "dev", dev, *extra])


def build_office(pm: ProcessManager) -> OfficeNet:
    """Create every namespace and link; returns once routing is in place and sealed."""
    lan = Netns.create(pm, "of-lan")
    # The switch needs no IP of its own; without IPv6 on its ports it adds no noise.
    lan.sysctl("net.ipv6.conf.default.disable_ipv6", "1")
    lan.sysctl("net.ipv6.conf.all.disable_ipv6", "1")
    lan.run(["ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"])
    lan.run(["ip", "link", "set", "br0", "up"])
    router = Netns.create(pm, "of-rt")
    inet = Netns.create(pm, "of-inet")
    net = OfficeNet(lan, router, inet)

    veth(router, net.capture_if, lan, "uplink")
    lan.run(["ip", "link", "set", "uplink", "master", "br0"])
    veth(router, "wan0", inet, "eth0")
    _addr(router, ROUTER_LAN[0], 24, net.capture_if)
    _addr(router, ROUTER_LAN[1], 64, net.capture_if)
    _addr(router, ROUTER_WAN[0], 24, "wan0")
    _addr(router, ROUTER_WAN[1], 64, "wan0")
    router.sysctl("net.ipv4.ip_forward", "1")
    router.sysctl("net.ipv6.conf.all.forwarding", "1")
    router.nft(ROUTER_RULES)

    _one_segment_per_packet(inet, "eth0")
    for address in INET_ADDRESSES:
        _addr(inet, address, 64 if ":" in address else 24, "eth0")
    inet.run(["ip", "route", "add", LAN4, "via", ROUTER_WAN[0]])
    inet.run(["ip", "-6", "route", "add", LAN6, "via", ROUTER_WAN[1]])

    for client in CLIENTS:
        ns = Netns.create(pm, f"of-{client.role}")
        port = f"p{client.v4.rsplit('.', 1)[1]}"
        veth(ns, "eth0", lan, port)
        _one_segment_per_packet(ns, "eth0")
        lan.run(["ip", "link", "set", port, "master", "br0"])
        _addr(ns, client.v4, 24, "eth0")
        _addr(ns, client.v6, 64, "eth0")
        ns.run(["ip", "route", "add", NET4, "via", ROUTER_LAN[0]])
        ns.run(["ip", "-6", "route", "add", NET6, "via", ROUTER_LAN[1]])
        net.clients[client.role] = ns
    assert_sealed(net.namespaces())
    settle(net)
    return net


def _one_segment_per_packet(ns: Netns, dev: str) -> None:
    # veth hands whole TSO super-segments to tcpdump; a real wire carries MSS-sized ones.
    ns.run(["ip", "link", "set", dev, "gso_max_segs", "1"])


def settle(net: OfficeNet, quiet: float = 2.5, timeout: float = 10.0) -> None:
    """Wait out IPv6 duplicate address detection and the MLD reports that follow it,
    so the capture starts on a quiet link and holds the same packets on every run."""
    deadline = time.monotonic() + timeout
    for ns in net.namespaces():
        if ns is net.lan:
            continue
        while ns.run(["ip", "-6", "addr", "show", "tentative"]).strip():
            if time.monotonic() > deadline:
                raise LabError(f"{ns.name}: IPv6 addresses still tentative after {timeout}s")
            time.sleep(0.1)
    time.sleep(quiet)


def routes(ns: Netns) -> list[tuple[str, str]]:
    """(table, destination) of every IPv4 and IPv6 route in the namespace."""
    out: list[tuple[str, str]] = []
    for family in ("-4", "-6"):
        text = ns.run(["ip", "-j", family, "route", "show", "table", "all"])
        for entry in json.loads(text or "[]"):
            out.append((str(entry.get("table", "main")), str(entry.get("dst", ""))))
    return out


def assert_sealed(namespaces: list[Netns]) -> None:
    """No namespace has a default route, and every route stays inside the office."""
    for ns in namespaces:
        for table, dst in routes(ns):
            if dst == "default":
                raise LabError(f"{ns.name}: default route in table {table}")
            if table == "local" or dst.startswith("127.") or dst in ("::1", ""):
                continue  # the kernel's own addresses and loopback
            net = ipaddress.ip_network(dst, strict=False)
            if not any(net.version == a.version and net.subnet_of(a) for a in ALLOWED):  # type: ignore[arg-type]
                raise LabError(f"{ns.name}: route to {dst} leaves the office network")
        links = json.loads(ns.run(["ip", "-j", "link", "show"]) or "[]")
        kinds = {str(link.get("link_type")) for link in links}
        if not kinds <= {"loopback", "ether"}:
            raise LabError(f"{ns.name}: unexpected link types {sorted(kinds)}")
