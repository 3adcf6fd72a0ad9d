"""A hostile network, as a hotel or a censoring ISP runs one, built from namespaces:

    client (198.51.100.10) -- router (198.51.100.1 | 203.0.113.1) -- inet (203.0.113.53-55)

The router is the client's DNS resolver (an Unbound on 198.51.100.1, identity
``hotel-resolver``) and, with nftables and a small SNI filter,

- resets TCP 853 to ``BLOCKED_DOT`` itself (its RST arrives with TTL 64, the server's own
  packets with 63: an injected reset);
- DNATs port 53 of ``HIJACKED_53`` to its own resolver (a transparent redirect);
- redirects TCP 443 of ``SNI_BLOCKED`` to the SNI filter (tests/lab/sni_filter.py), which
  resets the connection after a ClientHello naming ``dns.test`` and relays any other.

The "internet" namespace runs the public resolvers: one Unbound on all three addresses
(53 everywhere, 853 where the router lets it through; identity ``resolver-inet``),
dnsdist serving DoH on ``BLOCKED_DOT`` and ``SNI_BLOCKED`` (443), and the DoQ server on
``BLOCKED_DOT``. Documentation addresses only, no default route anywhere, nothing bridged
to the host.

``start_dropping`` builds the other network the survey must survive: a router that drops
everything, to time the survey's budget (bench/survey.py).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab.lab import DohListener, doh_only_config, doq_argv
from tests.lab.netns import Netns, veth
from tests.lab.pki import HOSTNAME, Pki
from tests.lab.ports import wait_line, wait_tcp
from tests.lab.procs import Proc, ProcessManager
from tests.lab.unbound import UnboundVariant, write_instance

CLIENT = "198.51.100.10"
ROUTER_LAN = "198.51.100.1"
ROUTER_WAN = "203.0.113.1"
BLOCKED_DOT = "203.0.113.53"
HIJACKED_53 = "203.0.113.54"
SNI_BLOCKED = "203.0.113.55"
PUBLIC = (BLOCKED_DOT, HIJACKED_53, SNI_BLOCKED)
SNI_FILTER_PORT = 8443
HOTEL_IDENTITY = "hotel-resolver"
INET_IDENTITY = "resolver-inet"
BLOCKED_NAMES = (HOSTNAME,)

HOSTILE_RULES = f"""\
table inet dotaudit_hostile {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr {HIJACKED_53} udp dport 53 dnat ip to {ROUTER_LAN}
    ip daddr {HIJACKED_53} tcp dport 53 dnat ip to {ROUTER_LAN}
    ip daddr {SNI_BLOCKED} tcp dport 443 redirect to :{SNI_FILTER_PORT}
  }}
  chain forward {{
    type filter hook forward priority 0; policy accept;
    ip daddr {BLOCKED_DOT} tcp dport 853 reject with tcp reset
  }}
}}
"""

DROP_ALL_RULES = """\
table inet dotaudit_drop {
  chain forward { type filter hook forward priority 0; policy drop; }
  chain input { type filter hook input priority 0; policy drop; iif "lo" accept; }
}
"""


@dataclass
class HostileNet:
    client: Netns
    router: Netns
    inet: Netns
    procs: list[Proc] = field(default_factory=list)

    def resolv_conf(self, directory: Path) -> Path:
        path = directory / "resolv.conf"
        path.write_text(f"# the hostile network's DHCP gave this\nnameserver {ROUTER_LAN}\n")
        return path


def known_file(directory: Path) -> Path:
    """The public resolvers of the hostile network in the format of resolvers.json."""
    entries = [
        {
            "provider": "Lab A (DoT reset, DoH and DoQ open)",
            "source": "tests/lab/hostile_net.py",
            "addresses": [BLOCKED_DOT],
            "dot_names": [HOSTNAME],
            "doh_hosts": [HOSTNAME],
            "doq_names": [HOSTNAME],
        },
        {
            "provider": "Lab B (port 53 redirected)",
            "source": "tests/lab/hostile_net.py",
            "addresses": [HIJACKED_53],
            "dot_names": [HOSTNAME],
            "doh_hosts": [],
        },
        {
            "provider": "Lab C (DoH blocked by SNI)",
            "source": "tests/lab/hostile_net.py",
            "addresses": [SNI_BLOCKED],
            "dot_names": [HOSTNAME],
            "doh_hosts": [HOSTNAME],
        },
    ]
    path = directory / "known.json"
    path.write_text(json.dumps({"as_of": "lab", "resolvers": entries}, indent=1))
    return path


def _link(client: Netns, router: Netns, inet: Netns | None) -> None:
    veth(client, "eth0", router, "lan0")
    client.run(["ip", "addr", "add", f"{CLIENT}/24", "dev", "eth0"])
    router.run(["ip", "addr", "add", f"{ROUTER_LAN}/24", "dev", "lan0"])
    client.run(["ip", "route", "add", "203.0.113.0/24", "via", ROUTER_LAN])
    router.sysctl("net.ipv4.ip_forward", "1")
    if inet is None:
        return
    veth(router, "wan0", inet, "eth0")
    router.run(["ip", "addr", "add", f"{ROUTER_WAN}/24", "dev", "wan0"])
    for address in PUBLIC:
        inet.run(["ip", "addr", "add", f"{address}/24", "dev", "eth0"])
    inet.run(["ip", "route", "add", "198.51.100.0/24", "via", ROUTER_WAN])


def start_hostile(pm: ProcessManager, pki: Pki, base: Path) -> HostileNet:
    client, router, inet = (Netns.create(pm, r) for r in ("hn-cl", "hn-rt", "hn-in"))
    net = HostileNet(client, router, inet)
    _link(client, router, inet)
    router.nft(HOSTILE_RULES)

    hotel = UnboundVariant(
        "hostile-hotel", (ROUTER_LAN,), tls_port=None, netns=router.name, identity=HOTEL_IDENTITY
    )
    # No DoT listener on BLOCKED_DOT: the router resets 853 before it gets there, and the
    # DoQ server needs that address's UDP 853 (Unbound binds UDP on its TLS port too).
    public = UnboundVariant(
        "hostile-inet",
        PUBLIC,
        tls_addresses=(HIJACKED_53, SNI_BLOCKED),
        netns=inet.name,
        identity=INET_IDENTITY,
    )
    for variant, ns in ((hotel, router), (public, inet)):
        conf, env = write_instance(variant, pki, base)
        proc = ns.start("unbound", ["unbound", "-d", "-c", str(conf)], env)
        net.procs.append(proc)
        for host, port in variant.tcp_ports():
            wait_tcp(host, port, 10.0, alive=proc.running, netns=ns.name)

    valid = pki.leaf("valid")
    listeners = [DohListener(a, valid.cert, valid.key) for a in (BLOCKED_DOT, SNI_BLOCKED)]
    dd_conf = base / "hostile-dnsdist.conf"
    dd_conf.write_text(doh_only_config(listeners, f"{BLOCKED_DOT}:53", BLOCKED_DOT))
    dnsdist = inet.start(
        "dnsdist", ["dnsdist", "--supervised", "--disable-syslog", "-C", str(dd_conf)]
    )
    net.procs.append(dnsdist)
    for address in (BLOCKED_DOT, SNI_BLOCKED):
        wait_tcp(address, 443, 10.0, alive=dnsdist.running, netns=inet.name)

    doq = pm.start(f"{inet.name}-doq", inet.argv(doq_argv(BLOCKED_DOT, 853, pki)), stdout_pipe=True)
    net.procs.append(doq)
    assert doq.popen.stdout is not None
    wait_line(doq.popen.stdout.fileno(), b"READY", 10.0)

    blocks = [a for name in BLOCKED_NAMES for a in ("--block", name)]
    argv = [
        sys.executable,
        "-m",
        "tests.lab.sni_filter",
        "--listen",
        ROUTER_LAN,
        "--port",
        str(SNI_FILTER_PORT),
        *blocks,
    ]
    sni = pm.start(f"{router.name}-sni-filter", router.argv(argv), stdout_pipe=True)
    net.procs.append(sni)
    assert sni.popen.stdout is not None
    wait_line(sni.popen.stdout.fileno(), b"READY", 10.0)
    return net


@dataclass
class DroppingNet:
    client: Netns
    router: Netns

    def resolv_conf(self, directory: Path) -> Path:
        path = directory / "resolv.conf"
        path.write_text(f"nameserver {ROUTER_LAN}\n")
        return path


def start_dropping(pm: ProcessManager) -> DroppingNet:
    """client -- router, where the router drops every packet it is given (nothing beyond
    it exists): every DoT, DoH, DoQ and port-53 attempt waits for its whole timeout."""
    client, router = (Netns.create(pm, r) for r in ("dr-cl", "dr-rt"))
    _link(client, router, None)
    # The "internet" side is a veth pair with both ends in the router: with a route there,
    # packets reach the forward hook and are dropped, where without one the router would
    # answer ICMP net unreachable.
    router.run(["ip", "link", "add", "wan0", "type", "veth", "peer", "name", "wan1"])
    router.run(["ip", "addr", "add", f"{ROUTER_WAN}/24", "dev", "wan0"])
    for ifname in ("wan0", "wan1"):
        router.run(["ip", "link", "set", ifname, "up"])
    router.nft(DROP_ALL_RULES)
    return DroppingNet(client, router)


def dropping_known_file(directory: Path, count: int = 10) -> Path:
    """``count`` resolvers behind the dropping router, each offering DoT, DoH and DoQ."""
    entries = [
        {
            "provider": f"Lab dropped {i}",
            "source": "tests/lab/hostile_net.py",
            "addresses": [f"203.0.113.{60 + i}"],
            "dot_names": [HOSTNAME],
            "doh_hosts": [HOSTNAME],
            "doq_names": [HOSTNAME],
        }
        for i in range(count)
    ]
    path = directory / "known-dropped.json"
    path.write_text(json.dumps({"as_of": "lab", "resolvers": entries}, indent=1))
    return path
