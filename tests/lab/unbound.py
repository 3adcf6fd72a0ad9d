"""Unbound instances that answer only from local data and never recurse."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab.pki import Pki
from tests.lab.zone import unbound_local_data

LOOPBACK4 = ipaddress.IPv4Network("127.0.0.0/8")


@dataclass(frozen=True, slots=True)
class UnboundVariant:
    name: str
    addresses: tuple[str, ...]
    leaf: str = "valid"
    pad: bool = True
    keepalive: bool = True
    keepalive_ms: int = 120_000
    idle_ms: int = 30_000
    tls12_only: bool = False
    tls_port: int | None = 853
    """None: plain DNS only."""
    plain_port: int | None = 53
    tls_addresses: tuple[str, ...] | None = None
    """Addresses that get the TLS port (default: all of ``addresses``)."""
    netns: str | None = None
    local_data: tuple[str, ...] = ()
    """Records served besides the lab zone (presentation format, one RR each)."""
    identity: str | None = None
    """What it answers to id.server/hostname.bind and as its NSID (RFC 4892, RFC 5001)."""
    notes: str = field(default="", compare=False)

    @property
    def address(self) -> str:
        return self.addresses[0]

    def tcp_ports(self) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        for addr in self.addresses:
            if self.plain_port is not None:
                out.append((addr, self.plain_port))
        if self.tls_port is not None:
            out += [(addr, self.tls_port) for addr in self.tls_addresses or self.addresses]
        return out


def outside_loopback() -> list[str]:
    """Every IPv4 and IPv6 prefix except 127.0.0.0/8: nothing to send queries to."""
    v4 = sorted(ipaddress.IPv4Network("0.0.0.0/0").address_exclude(LOOPBACK4))
    return [str(n) for n in v4] + ["::/0"]


def _port_suffix(addr: str, port: int) -> str:
    return f"{addr}@{port}"


def render(variant: UnboundVariant, pki: Pki, workdir: Path) -> str:
    leaf = pki.leaf(variant.leaf)
    lines = [
        "server:",
        "verbosity: 1",
        "use-syslog: no",
        'logfile: ""',
        "log-queries: yes",
        "log-time-ascii: yes",
        'chroot: ""',
        'username: ""',
        f'directory: "{workdir}"',
        f'pidfile: "{workdir}/unbound.pid"',
        "do-daemonize: no",
        "num-threads: 1",
        "so-reuseport: no",
        "msg-cache-size: 1m",
        "rrset-cache-size: 1m",
        "outgoing-range: 32",
        "num-queries-per-thread: 32",
        "incoming-num-tcp: 64",
        'module-config: "iterator"',
        "do-ip6: yes",
        "interface-automatic: no",
        "access-control: 0.0.0.0/0 allow",
        "access-control: ::/0 allow",
        f"pad-responses: {'yes' if variant.pad else 'no'}",
        "pad-responses-block-size: 468",
        f"edns-tcp-keepalive: {'yes' if variant.keepalive else 'no'}",
        f"edns-tcp-keepalive-timeout: {variant.keepalive_ms}",
        f"tcp-idle-timeout: {variant.idle_ms}",
        "do-not-query-localhost: yes",
    ]
    lines += [f"do-not-query-address: {net}" for net in outside_loopback()]
    for addr in variant.addresses:
        if variant.plain_port is not None:
            lines.append(f"interface: {_port_suffix(addr, variant.plain_port)}")
    if variant.tls_port is not None:
        lines += [
            f"tls-port: {variant.tls_port}",
            f'tls-service-key: "{leaf.key}"',
            f'tls-service-pem: "{leaf.cert}"',
        ]
        for addr in variant.tls_addresses or variant.addresses:
            lines.append(f"interface: {_port_suffix(addr, variant.tls_port)}")
    if variant.identity is not None:
        lines += [f'identity: "{variant.identity}"', f'nsid: "ascii_{variant.identity}"']
    lines.append('local-zone: "." static')
    lines += unbound_local_data()
    lines += [f"local-data: '{record}'" for record in variant.local_data]
    lines += ["remote-control:", "control-enable: no"]
    return "\n".join(lines) + "\n"


TLS12_OPENSSL_CONF = """\
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1.2
MaxProtocol = TLSv1.2
"""


def write_instance(variant: UnboundVariant, pki: Pki, base: Path) -> tuple[Path, dict[str, str]]:
    """Write the config (and OpenSSL config when needed); returns (conf path, extra env)."""
    workdir = base / f"unbound-{variant.name}"
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "unbound.conf"
    conf.write_text(render(variant, pki, workdir))
    env: dict[str, str] = {}
    if variant.tls12_only:
        # Unbound has no maximum-version option; OpenSSL's own config caps it.
        ossl = workdir / "openssl-tls12.cnf"
        ossl.write_text(TLS12_OPENSSL_CONF)
        env["OPENSSL_CONF"] = str(ossl)
    return conf, env
