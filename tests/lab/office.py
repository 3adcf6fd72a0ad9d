"""Scenario 9, "office": a small office recorded at its uplink router (pcaps/09-office).

Eight machines on one switched LAN (``tests.lab.office_net``) reach three Unbound
resolvers, a DoQ server and a web server on the "internet" side through a router that
drops DoT to one resolver address and resets it to another. tcpdump listens on the
router's LAN-side interface, so the capture holds what an uplink tap sees: unicast
traffic through the router plus the LAN's multicast (mDNS, LLMNR, ARP, ND).

The steps run one after another in a fixed order, so names and their order are the
same on every run; only ports, timings, keys and certificates differ.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dns.message
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.lab.clients import (
    STUBBY_LISTEN,
    getdns_argv,
    getdns_ok,
    kdig_argv,
    run_getdns,
    run_kdig,
    stubby_argv,
    stubby_config,
)
from tests.lab.lab import doq_argv
from tests.lab.netns import Netns
from tests.lab.office_net import (
    CLIENTS,
    DOQ,
    DROPPED,
    PADDED,
    PADDED6,
    RESET,
    TLS12,
    UNPADDED,
    WEB,
    OfficeNet,
    build_office,
)
from tests.lab.pki import HOSTNAME, Pki
from tests.lab.ports import netns_socket, wait_line, wait_tcp
from tests.lab.procs import LabError, Proc, ProcessManager
from tests.lab.recorder import Exchange, Recorder
from tests.lab.unbound import UnboundVariant, write_instance

if TYPE_CHECKING:
    from tests.lab.scenarios import Ctx

NAME = "09-office"
QUERY_PAD = 128
RESPONSE_PAD = 468
WEB_NAMES = ("intranet.example", "www.example")
# Office names on top of the lab zone (tests/lab/zone.py), served by every Unbound here.
OFFICE_RECORDS = (
    ("www.example.", "A", WEB),
    ("intranet.example.", "A", WEB),
    ("vpn.corp.example.", "A", "203.0.113.10"),
    ("fileserver.corp.example.", "A", "198.51.100.40"),
)
MDNS = ("224.0.0.251", 5353)
LLMNR = ("224.0.0.252", 5355)
MULTICAST_QUERIES = (
    (MDNS, "mdns", "printer.local", 0),
    (MDNS, "mdns", "fileserver.corp.example", 0),  # a search-list name spilling onto the link
    (LLMNR, "llmnr", "fileserver", 0x1F01),
    (LLMNR, "llmnr", "wpad.corp.example", 0x1F02),  # the classic LLMNR-poisoning target
)
ECS = "198.51.100.0/24"


@dataclass
class Services:
    unbound: dict[str, Proc] = field(default_factory=dict)
    doq: Proc | None = None
    web: Proc | None = None
    web_cert: Path | None = None

    def logs(self) -> list[Proc]:
        return [*self.unbound.values(), *([self.doq] if self.doq else [])]


def web_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the office web names (the client trusts it
    directly; TLS 1.3 encrypts it on the wire anyway)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, WEB_NAMES[0])])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in WEB_NAMES]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "web.pem", directory / "web.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _office_unbound(conf: Path) -> None:
    extra = "".join(f"local-data: '{n} 300 IN {t} {d}'\n" for n, t, d in OFFICE_RECORDS)
    text = conf.read_text()
    marker = 'local-zone: "." static\n'
    if marker not in text:
        raise LabError(f"{conf}: no {marker.strip()} line to add office records after")
    conf.write_text(text.replace(marker, marker + extra))


def start_services(pm: ProcessManager, pki: Pki, base: Path, net: OfficeNet) -> Services:
    inet = net.inet
    services = Services()
    variants = (
        # DoT is blocked on DROPPED and RESET by the router; their port 53 stays open.
        UnboundVariant("office-padded", (PADDED, PADDED6, DROPPED, RESET), netns=inet.name),
        UnboundVariant("office-unpadded", (UNPADDED,), pad=False, netns=inet.name),
        UnboundVariant("office-tls12", (TLS12,), tls12_only=True, netns=inet.name),
    )
    for variant in variants:
        conf, env = write_instance(variant, pki, base)
        _office_unbound(conf)
        # Named without the namespace's PID, so the truth file's server_log is stable.
        argv = inet.argv(["unbound", "-d", "-c", str(conf)])
        services.unbound[variant.name] = pm.start(f"unbound-{variant.name}", argv, env)
    doq = pm.start("doq-office", inet.argv(doq_argv(DOQ, 853, pki)), stdout_pipe=True)
    services.doq = doq
    cert, key = web_certificate(base / "office-web")
    services.web_cert = cert
    services.web = inet.start(
        "web",
        [
            "openssl",
            "s_server",
            "-accept",
            f"{WEB}:443",
            "-cert",
            str(cert),
            "-key",
            str(key),
            "-www",
            "-quiet",
        ],
    )
    assert doq.popen.stdout is not None
    wait_line(doq.popen.stdout.fileno(), b"READY", 10.0)
    for variant in variants:
        proc = services.unbound[variant.name]
        for host, port in variant.tcp_ports():
            wait_tcp(host, port, 10.0, alive=proc.running, netns=inet.name)
    wait_tcp(WEB, 443, 10.0, alive=services.web.running, netns=inet.name)
    return services


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise LabError(f"office step failed: {what}")


def multicast_query(ns: Netns, source: str, group: tuple[str, int], qname: str, qid: int) -> None:
    """One mDNS or LLMNR question sent from ``source`` inside ``ns``, as a one-shot
    querier would (RFC 6762 §5.1; RFC 4795 §2.5 uses IPv4 TTL 1, mDNS TTL 255)."""
    query = dns.message.make_query(qname, "A", use_edns=False, id=qid)
    query.flags = 0  # neither protocol sets RD
    with netns_socket(ns.name, socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        # No route covers the groups: the interface address picks the link.
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source))
        ttl = 255 if group == MDNS else 1
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        sock.sendto(query.to_wire(), group)


def https_get(ns: Netns, sni: str, cert: Path) -> None:
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            ns.name,
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "--max-time",
            "5",
            "--cacert",
            str(cert),
            "--resolve",
            f"{sni}:443:{WEB}",
            f"https://{sni}/",
        ],
        capture_output=True,
        text=True,
        timeout=15,
    )
    _need(done.returncode == 0, f"curl https://{sni}/: {done.stderr}")


def _wait_closed(ns: Netns, dst: str, port: int, timeout: float) -> None:
    """Until the namespace holds no established TCP connection to dst:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = ns.run(["ss", "-Htn", "state", "established", "dst", f"{dst}:{port}"])
        if not out.strip():
            return
        time.sleep(0.1)
    raise LabError(f"{ns.name}: connection to {dst}:{port} still open after {timeout}s")


def _qs(*items: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        name, _, qtype = item.partition(" ")
        out.append((name, qtype or "A"))
    return out


# Padded strict DoT/DoQ as the lab configures it: kdig or stubby pad queries to 128,
# the resolver pads answers to 468 (RFC 8467 §4.1).
PADDED_TLS13: dict[str, Any] = {
    "tls_version": "TLS1.3",
    "query_padding": QUERY_PAD,
    "response_padding": RESPONSE_PAD,
}
STRICT: dict[str, Any] = {"auth": "strict", "sni": HOSTNAME}


class Office:
    """The steps of the scenario, each adding its exchanges to the recorder."""

    def __init__(self, net: OfficeNet, services: Services, pki: Pki, rec: Recorder) -> None:
        self.net, self.services, self.pki, self.rec = net, services, pki, rec
        self.ca = pki.ca_cert
        self.hosts = {c.role: c for c in CLIENTS}

    def ns(self, role: str) -> Netns:
        return self.net.client(role)

    def add(
        self,
        role: str,
        exid: str,
        client: str,
        server: str,
        port: int,
        transport: str,
        queries: list[tuple[str, str]],
        expected: str = "answered",
        v6: bool = False,
        **facts: Any,
    ) -> None:
        host = self.hosts[role]
        self.rec.add(
            Exchange(
                f"{role}-{exid}",
                client,
                server,
                port,
                transport,
                queries,
                expected,
                client_addr=host.v6 if v6 else host.v4,
                **facts,
            )
        )

    def kdig(self, role: str, argv: Sequence[str]) -> None:
        res = run_kdig(argv, netns=self.ns(role).name, keylog=self.rec.keylog)
        _need(res.ok, f"{role}: {' '.join(argv)}\n{res.stdout}{res.stderr}")

    def https(self, role: str, sni: str) -> None:
        assert self.services.web_cert is not None
        https_get(self.ns(role), sni, self.services.web_cert)
        self.add(
            role,
            f"https-{sni.split('.')[0]}",
            "curl",
            WEB,
            443,
            "https",
            [],
            sni=sni,
            alpn=["h2", "http/1.1"],
            tls_version="TLS1.3",
            notes="background web traffic (openssl s_server -www)",
        )

    def alice_stubby(self, work: Path) -> None:
        """An application asks stubby (in alice's namespace) four names; stubby sends
        them over one strict, padded DoT connection and closes it after 2 s idle."""
        ns = self.ns("alice")
        work.mkdir(parents=True, exist_ok=True)
        pin = self.pki.leaf("valid").pin
        conf = stubby_config(work / "stubby.yml", PADDED, self.ca, HOSTNAME, pin=pin, idle_ms=2000)
        stubby = ns.start("stubby", stubby_argv(conf))
        qs = _qs("www.example", "intranet.example", "mail.lab.test MX", "big.lab.test TXT")
        try:
            wait_tcp(STUBBY_LISTEN, 53, 5, alive=stubby.running, netns=ns.name)
            for q in qs:
                argv = kdig_argv(STUBBY_LISTEN, [q], port=53, tls=False, padding=False, tcp=True)
                res = run_kdig(argv, netns=ns.name)
                _need(res.ok, f"stubby {q}: {res.stdout}{res.stderr}")
            _wait_closed(ns, PADDED, 853, 10)
        finally:
            ns.pm.stop(stubby)
        self.add(
            "alice",
            "stubby",
            "stubby",
            PADDED,
            853,
            "dot",
            qs,
            **STRICT,
            **PADDED_TLS13,
            notes="stubby strict + pinned, tls_query_padding_blocksize 128; the "
            "application asked stubby over loopback (not on the wire)",
        )

    def bob_kdig(self) -> None:
        qs = _qs("www.lab.test", "vpn.corp.example", "big.lab.test TXT")
        self.kdig("bob", kdig_argv(PADDED, qs, ca=self.ca, hostname=HOSTNAME, keepopen=True))
        self.add(
            "bob",
            "dot-padded",
            "kdig",
            PADDED,
            853,
            "dot",
            qs,
            **STRICT,
            **PADDED_TLS13,
            notes="+padding +keepopen: three queries on one connection",
        )
        qs = _qs("intranet.lab.test")
        self.kdig("bob", kdig_argv(PADDED6, qs, pin=self.pki.leaf("valid").pin))
        self.add(
            "bob",
            "dot-pin",
            "kdig",
            PADDED6,
            853,
            "dot",
            qs,
            v6=True,
            auth="pin",
            sni=None,
            **PADDED_TLS13,
            notes="+tls-pin only, over IPv6: no SNI",
        )

    def carol_multicast(self) -> None:
        me = self.hosts["carol"]
        for group, service, qname, qid in MULTICAST_QUERIES:
            multicast_query(self.ns("carol"), me.v4, group, qname, qid)
            self.add(
                "carol",
                f"{service}-{qname.split('.')[0]}",
                "python",
                group[0],
                group[1],
                "udp",
                [(qname, "A")],
                "sent",
                notes=f"{service} one-shot query to the link; nobody answers",
            )
            time.sleep(0.05)  # a fixed order on the wire

    def carol_leaks(self) -> None:
        qs = _qs("secret.lab.test", "www.example")
        for q in qs:
            self.kdig("carol", kdig_argv(UNPADDED, [q], port=53, tls=False, padding=False))
        self.add("carol", "udp53", "kdig", UNPADDED, 53, "udp", qs)
        qs = _qs("mail.lab.test MX")
        self.kdig("carol", kdig_argv(UNPADDED, qs, port=53, tls=False, padding=False, tcp=True))
        self.add("carol", "tcp53", "kdig", UNPADDED, 53, "tcp", qs)
        argv = getdns_argv(UNPADDED, "printer.lab.test", port=53, tls=False)
        done = run_getdns(argv, self.ca, netns=self.ns("carol").name)
        _need(getdns_ok(done), done.stdout + done.stderr)
        self.add(
            "carol",
            "getdns-udp53",
            "getdns_query",
            UNPADDED,
            53,
            "udp",
            _qs("printer.lab.test"),
            notes="getdns_query -s -l U, one explicit upstream",
        )

    def fallback(self, role: str, server: str, qname: str, outcome: str, how: str) -> None:
        argv = kdig_argv(server, [qname], ca=self.ca, hostname=HOSTNAME, timeout=2)
        res = run_kdig(argv, netns=self.ns(role).name)
        _need(not res.ok, f"{role}: DoT to {server} should fail")
        self.add(
            role,
            "dot-blocked",
            "kdig",
            server,
            853,
            "dot",
            _qs(qname),
            outcome,
            **STRICT,
            query_padding=QUERY_PAD,
            notes=how,
        )
        self.kdig(role, kdig_argv(server, [qname], port=53, tls=False, padding=False))
        self.add(
            role,
            "fallback-udp53",
            "kdig",
            server,
            53,
            "udp",
            _qs(qname),
            notes="the same name in plaintext right after the failed DoT attempt",
        )

    def frank_old_dot(self) -> None:
        qs = _qs("www.lab.test", "mail.lab.test MX")
        # kdig pads over TLS by default: +nopadding makes this session unpadded both ways.
        argv = kdig_argv(
            UNPADDED,
            qs,
            ca=self.ca,
            hostname=HOSTNAME,
            padding=False,
            keepopen=True,
            extra=["+nopadding"],
        )
        self.kdig("frank", argv)
        self.add(
            "frank",
            "dot-unpadded",
            "kdig",
            UNPADDED,
            853,
            "dot",
            qs,
            **STRICT,
            tls_version="TLS1.3",
            notes="kdig +nopadding to a resolver that does not pad",
        )
        qs = _qs("intranet.lab.test")
        self.kdig("frank", kdig_argv(TLS12, qs, ca=self.ca, hostname=HOSTNAME))
        self.add(
            "frank",
            "dot-tls12",
            "kdig",
            TLS12,
            853,
            "dot",
            qs,
            **STRICT,
            **{**PADDED_TLS13, "tls_version": "TLS1.2"},
            notes="the resolver's OpenSSL is capped at TLS 1.2",
        )

    def grace_doq(self) -> None:
        qs = _qs("www.lab.test")
        self.kdig("grace", kdig_argv(DOQ, qs, ca=self.ca, hostname=HOSTNAME, extra=["+quic"]))
        self.add(
            "grace",
            "doq",
            "kdig",
            DOQ,
            853,
            "doq",
            qs,
            **STRICT,
            alpn=["doq"],
            **PADDED_TLS13,
            notes="kdig +quic to the lab's aioquic DoQ server",
        )

    def heidi_ecs(self) -> None:
        qs = _qs("www.example")
        argv = kdig_argv(PADDED, qs, port=53, tls=False, padding=False, extra=[f"+subnet={ECS}"])
        self.kdig("heidi", argv)
        self.add(
            "heidi",
            "ecs-udp53",
            "kdig",
            PADDED,
            53,
            "udp",
            qs,
            notes=f"EDNS Client Subnet {ECS} (kdig +subnet)",
        )

    def run(self, work: Path) -> None:
        self.carol_multicast()
        self.alice_stubby(work / "office-stubby")
        self.https("alice", "intranet.example")
        self.bob_kdig()
        self.https("bob", "www.example")
        self.carol_leaks()
        self.fallback(
            "dave",
            DROPPED,
            "fileserver.corp.example",
            "syn_unanswered",
            "the router drops DoT to this address: SYN and its retransmit",
        )
        self.fallback(
            "erin",
            RESET,
            "mail.lab.test",
            "refused",
            "the router answers the SYN with its own reset (TTL 64, not 63)",
        )
        self.frank_old_dot()
        self.https("frank", "www.example")
        self.grace_doq()
        self.heidi_ecs()


DESCRIPTION = (
    "A small office seen at its uplink router (tcpdump on the router's LAN side): eight "
    "machines in their own network namespaces on 198.51.100.0/24 and 2001:db8:1::/64 reach "
    "resolvers and a web server on 203.0.113.0/24 and 2001:db8:53::/64. stubby and kdig "
    "use padded strict DoT (one kdig connection pin-only over IPv6, no SNI); one machine "
    "leaks plaintext over UDP and TCP 53 and sends mDNS and LLMNR queries; two fall back "
    "to plaintext after the router drops or resets their DoT; one uses unpadded DoT and "
    "TLS 1.2-only DoT; one DoQ; one sends EDNS Client Subnet; background HTTPS."
)


def network_section() -> dict[str, object]:
    return {
        "capture_point": "router, LAN-side interface lan0",
        "router": {
            "lan": ["198.51.100.1", "2001:db8:1::1"],
            "wan": ["203.0.113.1", "2001:db8:53::1"],
            "rules": {DROPPED: "tcp 853 drop", RESET: "tcp 853 reject with tcp reset"},
        },
        "clients": [{"role": c.role, "v4": c.v4, "v6": c.v6, "does": c.what} for c in CLIENTS],
        "servers": {
            PADDED: "Unbound, padded 468, DoT + 53 (also " + PADDED6 + ")",
            UNPADDED: "Unbound, unpadded, DoT + 53",
            TLS12: "Unbound, TLS 1.2 only, DoT + 53",
            DOQ: "aioquic DoQ server, UDP 853",
            DROPPED: "Unbound padded (853 dropped by the router)",
            RESET: "Unbound padded (853 reset by the router)",
            WEB: "openssl s_server -www on 443 (" + ", ".join(WEB_NAMES) + ")",
        },
    }


def record_office(ctx: Ctx) -> None:
    pm, pki = ctx.lab.pm, ctx.lab.pki
    base = ctx.lab.base / "office"
    base.mkdir(parents=True, exist_ok=True)
    net = build_office(pm)
    services = start_services(pm, pki, base, net)
    with Recorder(
        pm,
        ctx.out,
        ctx.work,
        NAME,
        DESCRIPTION,
        "",
        net.capture_if,
        net.router.name,
        services.logs(),
    ) as rec:
        Office(net, services, pki, rec).run(ctx.work)
    truth_path = ctx.out / f"{NAME}.truth.json"
    truth = json.loads(truth_path.read_text())
    truth["network"] = network_section()
    truth_path.write_text(json.dumps(truth, indent=1) + "\n")
    check_addresses(truth)


def check_addresses(truth: dict[str, object]) -> None:
    """Every address tshark saw is documentation-range, link-local or multicast."""
    allowed = [
        ipaddress.ip_network(n)
        for n in (
            "198.51.100.0/24",
            "203.0.113.0/24",
            "2001:db8::/32",
            "fe80::/10",
            "224.0.0.0/4",
            "ff00::/8",
        )
    ]
    seen = truth["tshark"]
    assert isinstance(seen, dict)
    for kind in ("dns", "tcp_flags", "client_hellos", "tls_records"):
        for row in seen[kind]:
            for key in ("src", "dst"):
                if row.get(key):
                    addr = ipaddress.ip_address(row[key])
                    if not any(addr.version == n.version and addr in n for n in allowed):
                        raise LabError(f"{NAME}: {addr} is outside the documentation ranges")
