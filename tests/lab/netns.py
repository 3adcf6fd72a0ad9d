"""Network namespaces for the firewall scenarios: nothing here touches the host's own
interfaces or nftables. Namespaces are joined only by veth pairs created directly inside
them, carry documentation-range addresses, and have no default route.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab.pki import HOSTNAME, Pki
from tests.lab.ports import wait_tcp
from tests.lab.procs import LabError, Proc, ProcessManager
from tests.lab.unbound import UnboundVariant, write_instance


@dataclass
class Netns:
    pm: ProcessManager
    name: str

    @classmethod
    def create(cls, pm: ProcessManager, role: str) -> Netns:
        name = f"dotaudit-{role}-{os.getpid()}"
        if Path(f"/run/netns/{name}").exists():
            raise LabError(f"network namespace {name} already exists")
        pm.add_netns(name)  # recorded first, so a crash right after still cleans it up
        _run(["ip", "netns", "add", name])
        ns = cls(pm, name)
        ns.run(["ip", "link", "set", "lo", "up"])
        return ns

    def argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str], stdin: str | None = None) -> str:
        return _run(self.argv(argv), stdin)

    def nft(self, ruleset: str) -> None:
        self.run(["nft", "-f", "-"], stdin=ruleset)

    def sysctl(self, key: str, value: str) -> None:
        self.run(["sysctl", "-q", "-w", f"{key}={value}"])

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> Proc:
        return self.pm.start(f"{self.name}-{name}", self.argv(argv), env)


def _run(argv: Sequence[str], stdin: str | None = None) -> str:
    done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


def veth(a: Netns, a_if: str, b: Netns, b_if: str) -> None:
    """A veth pair born inside the two namespaces: no end ever exists on the host."""
    _run(
        ["ip", "link", "add", a_if, "netns", a.name, "type", "veth",
         "peer", "name", b_if, "netns", b.name]
    )  # fmt: skip
    for ns, ifname in ((a, a_if), (b, b_if)):
        ns.sysctl(f"net.ipv6.conf.{ifname}.accept_ra", "0")
        ns.run(["ip", "link", "set", ifname, "up"])


FIREWALL = {
    "open": "127.85.0.1",
    "drop": "127.85.0.2",
    "reset": "127.85.0.3",
    "icmp": "127.85.0.4",
    "closed": "127.85.0.5",
}

FIREWALL_RULES = """\
table inet dotaudit_fw {
  chain input {
    type filter hook input priority 0; policy accept;
    ip daddr %(drop)s tcp dport 853 drop
    ip daddr %(drop)s udp dport 853 drop
    ip daddr %(reset)s tcp dport 853 reject with tcp reset
    ip daddr %(icmp)s tcp dport 853 reject with icmp type admin-prohibited
    ip daddr %(icmp)s udp dport 853 reject with icmp type admin-prohibited
  }
}
"""


@dataclass
class FirewallLab:
    """One namespace; 853 open, dropped, reset, ICMP-rejected or closed per address,
    port 53 open on all of them."""

    ns: Netns
    addresses: dict[str, str]
    unbound: Proc


def start_firewall(pm: ProcessManager, pki: Pki, base: Path) -> FirewallLab:
    ns = Netns.create(pm, "fw")
    ns.nft(FIREWALL_RULES % FIREWALL)
    addrs = tuple(FIREWALL.values())
    tls_addrs = tuple(a for k, a in FIREWALL.items() if k != "closed")
    variant = UnboundVariant("fw", addrs, tls_addresses=tls_addrs, netns=ns.name)
    conf, env = write_instance(variant, pki, base)
    proc = ns.start("unbound", ["unbound", "-d", "-c", str(conf)], env)
    for addr in addrs:
        wait_tcp(addr, 53, 10.0, alive=proc.running, netns=ns.name)
    wait_tcp(FIREWALL["open"], 853, 10.0, alive=proc.running, netns=ns.name)
    return FirewallLab(ns, dict(FIREWALL), proc)


@dataclass
class TwoHop:
    """client -- router -- server; the router resets 853 itself, so its RST arrives with
    TTL 64 while the server's own packets arrive with TTL 63."""

    client: Netns
    router: Netns
    server: Netns
    client_addr: str = "198.51.100.10"
    server_addr: str = "203.0.113.53"
    client_if: str = "eth0"
    hostname: str = HOSTNAME
    procs: list[Proc] = field(default_factory=list)


ROUTER_RULES = """\
table inet dotaudit_rt {
  chain forward {
    type filter hook forward priority 0; policy accept;
    tcp dport 853 reject with tcp reset
  }
}
"""


def start_twohop(pm: ProcessManager, pki: Pki, base: Path) -> TwoHop:
    client, router, server = (Netns.create(pm, r) for r in ("cl", "rt", "sv"))
    hop = TwoHop(client, router, server)
    veth(client, "eth0", router, "lan0")
    veth(router, "wan0", server, "eth0")
    client.run(["ip", "addr", "add", "198.51.100.10/24", "dev", "eth0"])
    router.run(["ip", "addr", "add", "198.51.100.1/24", "dev", "lan0"])
    router.run(["ip", "addr", "add", "203.0.113.1/24", "dev", "wan0"])
    server.run(["ip", "addr", "add", "203.0.113.53/24", "dev", "eth0"])
    client.run(["ip", "route", "add", "203.0.113.0/24", "via", "198.51.100.1"])
    server.run(["ip", "route", "add", "198.51.100.0/24", "via", "203.0.113.1"])
    router.sysctl("net.ipv4.ip_forward", "1")
    router.nft(ROUTER_RULES)
    variant = UnboundVariant("twohop", (hop.server_addr,), netns=server.name)
    conf, env = write_instance(variant, pki, base)
    proc = server.start("unbound", ["unbound", "-d", "-c", str(conf)], env)
    hop.procs.append(proc)
    wait_tcp(hop.server_addr, 53, 10.0, alive=proc.running, netns=client.name)
    # 853 is reset by the router, so readiness is checked from the server's own side.
    wait_tcp(hop.server_addr, 853, 10.0, alive=proc.running, netns=server.name)
    return hop
