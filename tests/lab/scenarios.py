"""The sample-capture scenarios behind ``make pcaps`` (see pcaps/README.md).

Each one runs real clients against the lab while tcpdump records, then writes
NAME.pcap and NAME.truth.json. Every kdig gets its own source address (``-b``), so the
truth file says exactly which client asked what.
"""

from __future__ import annotations

import asyncio
import struct
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dns.message

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
from tests.lab.lab import Lab
from tests.lab.netns import FirewallLab
from tests.lab.pki import HOSTNAME
from tests.lab.ports import wait_tcp
from tests.lab.procs import LabError, Proc
from tests.lab.recorder import Exchange, Recorder

KDIG_QUERY_PAD = 128  # kdig +padding pads queries to 128 bytes (RFC 8467 block)
RESPONSE_PAD = 468


@dataclass
class Ctx:
    lab: Lab
    fw: FirewallLab
    out: Path
    work: Path

    def unbound(self, variant: str) -> Proc:
        return next(p for p in self.lab.pm.procs if p.name == f"unbound-{variant}")

    def doq(self) -> Proc:
        return next(p for p in self.lab.pm.procs if p.name == "doq")

    def recorder(
        self,
        name: str,
        description: str,
        bpf: str,
        logs: list[Proc],
        interface: str = "lo",
        netns: str | None = None,
    ) -> Recorder:
        return Recorder(
            self.lab.pm, self.out, self.work, name, description, bpf, interface, netns, logs
        )


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise LabError(f"scenario step failed: {what}")


def s01_kdig_strict(ctx: Ctx) -> None:
    r = ctx.lab["padded"]
    desc = (
        "kdig, strict DoT with padding: three queries over one kept-open connection "
        "(one answer is over 468 bytes, so it is padded to 936), then a pin-only "
        "connection without SNI."
    )
    bpf = f"host {r.address} and tcp port 853"
    with ctx.recorder("01-kdig-strict-dot", desc, bpf, [ctx.unbound("padded")]) as rec:
        qs = [("www.lab.test", "A"), ("mail.lab.test", "MX"), ("big.lab.test", "TXT")]
        argv = kdig_argv(
            r.address, qs, ca=ctx.lab.ca, hostname=HOSTNAME, keepopen=True, source="127.0.0.11"
        )
        res = run_kdig(argv, keylog=rec.keylog)
        _need(res.ok and len(res.answers) == 3, res.stdout + res.stderr)
        rec.add(
            Exchange(
                "strict-keepopen",
                "kdig",
                r.address,
                853,
                "dot",
                qs,
                "answered",
                client_addr="127.0.0.11",
                auth="strict",
                sni=HOSTNAME,
                tls_version="TLS1.3",
                query_padding=KDIG_QUERY_PAD,
                response_padding=RESPONSE_PAD,
                notes="+keepopen: one connection for all three queries",
            )
        )
        argv = kdig_argv(r.address, ["intranet.lab.test"], pin=r.pin, source="127.0.0.12")
        res = run_kdig(argv, keylog=rec.keylog)
        _need(res.ok, res.stdout + res.stderr)
        rec.add(
            Exchange(
                "pin-only",
                "kdig",
                r.address,
                853,
                "dot",
                [("intranet.lab.test", "A")],
                "answered",
                client_addr="127.0.0.12",
                auth="pin",
                sni=None,
                tls_version="TLS1.3",
                query_padding=KDIG_QUERY_PAD,
                response_padding=RESPONSE_PAD,
                notes="+tls-pin only: authenticated by SPKI pin, no SNI sent",
            )
        )


def _wait_no_connection(dst: str, port: int, timeout: float) -> None:
    """Until no TCP connection to dst:port is left (stubby closes idle ones itself)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["ss", "-Htn", "state", "established", "dst", f"{dst}:{port}"],
            capture_output=True,
            text=True,
        ).stdout
        if not out.strip():
            return
        time.sleep(0.2)
    raise LabError(f"connection to {dst}:{port} still open after {timeout}s")


def s02_stubby(ctx: Ctx) -> None:
    r = ctx.lab["padded"]
    desc = (
        "stubby (strict, pinned, tls_query_padding_blocksize 128) forwarding an "
        "application's queries over DoT; padding shows in TLS 1.3 record sizes: "
        "147 = 128 + 19 and 487 = 468 + 19. stubby closes the idle connection after 10 s."
    )
    conf = stubby_config(ctx.work / "stubby.yml", r.address, ctx.lab.ca, HOSTNAME, pin=r.pin)
    bpf = f"host {r.address} and tcp port 853"
    with ctx.recorder("02-stubby-dot", desc, bpf, [ctx.unbound("padded")]) as rec:
        stubby = ctx.lab.pm.start("stubby", stubby_argv(conf))
        try:
            wait_tcp(STUBBY_LISTEN, 53, 5, alive=stubby.running)
            qs = [("www.lab.test", "A"), ("secret.lab.test", "A"), ("big.lab.test", "TXT")]
            for name, qtype in qs:
                res = run_kdig(
                    kdig_argv(
                        STUBBY_LISTEN,
                        [(name, qtype)],
                        port=53,
                        tls=False,
                        padding=False,
                        tcp=True,
                        source="127.0.0.21",
                    )
                )
                _need(res.ok, res.stdout + res.stderr)
            _wait_no_connection(r.address, 853, 15)
        finally:
            ctx.lab.pm.stop(stubby)
        rec.add(
            Exchange(
                "stubby-strict",
                "stubby",
                r.address,
                853,
                "dot",
                qs,
                "answered",
                auth="strict",
                sni=HOSTNAME,
                tls_version="TLS1.3",
                query_padding=128,
                response_padding=RESPONSE_PAD,
                notes="the application asked stubby on 127.53.9.1:53 (not captured)",
            )
        )


def s03_plaintext(ctx: Ctx) -> None:
    r = ctx.lab["unpadded"]
    desc = "Plaintext DNS leaks: kdig over UDP and TCP port 53, getdns_query over UDP 53."
    bpf = f"host {r.address} and port 53"
    with ctx.recorder("03-plaintext-leaks", desc, bpf, [ctx.unbound("unpadded")]) as rec:
        res = run_kdig(
            kdig_argv(
                r.address,
                ["secret.lab.test"],
                port=53,
                tls=False,
                padding=False,
                source="127.0.0.31",
            )
        )
        _need(res.ok, res.stdout)
        rec.add(
            Exchange(
                "kdig-udp",
                "kdig",
                r.address,
                53,
                "udp",
                [("secret.lab.test", "A")],
                "answered",
                client_addr="127.0.0.31",
            )
        )
        res = run_kdig(
            kdig_argv(
                r.address,
                [("mail.lab.test", "MX")],
                port=53,
                tls=False,
                padding=False,
                tcp=True,
                source="127.0.0.32",
            )
        )
        _need(res.ok, res.stdout)
        rec.add(
            Exchange(
                "kdig-tcp",
                "kdig",
                r.address,
                53,
                "tcp",
                [("mail.lab.test", "MX")],
                "answered",
                client_addr="127.0.0.32",
            )
        )
        done = run_getdns(
            getdns_argv(r.address, "printer.lab.test", port=53, tls=False), ctx.lab.ca
        )
        _need(getdns_ok(done), done.stdout + done.stderr)
        rec.add(
            Exchange(
                "getdns-udp",
                "getdns_query",
                r.address,
                53,
                "udp",
                [("printer.lab.test", "A")],
                "answered",
                notes="getdns_query -s -l U with one explicit upstream",
            )
        )


FALLBACK = (
    ("drop", "intranet.lab.test", "syn_unanswered", "127.0.0.41"),
    ("reset", "mail.lab.test", "refused", "127.0.0.42"),
    ("icmp", "printer.lab.test", "icmp_rejected", "127.0.0.43"),
)


def s04_fallback(ctx: Ctx) -> None:
    fw = ctx.fw
    desc = (
        "Fallback: a strict DoT attempt blocked by DROP, by a TCP reset and by ICMP "
        "admin-prohibited, each followed by the same name in plaintext UDP. kdig gives up "
        "after 2 s on DROP (SYN + retransmit), at once on RST or ICMP."
    )
    with ctx.recorder(
        "04-fallback", desc, "port 853 or port 53 or icmp", [fw.unbound], netns=fw.ns.name
    ) as rec:
        for state, name, outcome, src in FALLBACK:
            addr = fw.addresses[state]
            res = run_kdig(
                kdig_argv(addr, [name], ca=ctx.lab.ca, hostname=HOSTNAME, source=src, timeout=2),
                netns=fw.ns.name,
            )
            _need(not res.ok, f"{state}: DoT should fail")
            rec.add(
                Exchange(
                    f"dot-{state}",
                    "kdig",
                    addr,
                    853,
                    "dot",
                    [(name, "A")],
                    outcome,
                    client_addr=src,
                    auth="strict",
                    sni=HOSTNAME,
                    query_padding=KDIG_QUERY_PAD,
                )
            )
            res = run_kdig(
                kdig_argv(addr, [name], port=53, tls=False, padding=False, source=src),
                netns=fw.ns.name,
            )
            _need(res.ok, res.stdout)
            rec.add(
                Exchange(
                    f"fallback-{state}",
                    "kdig",
                    addr,
                    53,
                    "udp",
                    [(name, "A")],
                    "answered",
                    client_addr=src,
                    notes=f"same name in plaintext after the {state} failure",
                )
            )


def s05_tls12(ctx: Ctx) -> None:
    r = ctx.lab["tls12"]
    desc = (
        "A TLS 1.2-only resolver: kdig completes a TLS 1.2 session; openssl s_client "
        "offering only TLS 1.3 is refused with a protocol_version alert."
    )
    bpf = f"host {r.address} and tcp port 853"
    with ctx.recorder("05-tls12", desc, bpf, [ctx.unbound("tls12")]) as rec:
        res = run_kdig(
            kdig_argv(
                r.address, ["www.lab.test"], ca=ctx.lab.ca, hostname=HOSTNAME, source="127.0.0.51"
            ),
            keylog=rec.keylog,
        )
        _need(res.ok and res.answers[0].tls == "TLS1.2", res.stdout)
        rec.add(
            Exchange(
                "kdig-tls12",
                "kdig",
                r.address,
                853,
                "dot",
                [("www.lab.test", "A")],
                "answered",
                client_addr="127.0.0.51",
                auth="strict",
                sni=HOSTNAME,
                tls_version="TLS1.2",
                query_padding=KDIG_QUERY_PAD,
                response_padding=RESPONSE_PAD,
            )
        )
        done = subprocess.run(
            [
                "openssl",
                "s_client",
                "-tls1_3",
                "-connect",
                f"{r.address}:853",
                "-servername",
                HOSTNAME,
                "-CAfile",
                str(ctx.lab.ca),
            ],
            input="",
            capture_output=True,
            text=True,
            timeout=10,
        )
        _need(done.returncode != 0, "TLS 1.3-only handshake should fail")
        rec.add(
            Exchange(
                "openssl-tls13-only",
                "openssl s_client",
                r.address,
                853,
                "dot",
                [],
                "protocol_version_alert",
                client_addr="127.0.0.1",
                sni=HOSTNAME,
                tls_version="TLS1.3",
                notes="offers only TLS 1.3; the server alerts protocol_version",
            )
        )


def doq_ask(
    address: str, ca: Path, queries: list[tuple[str, str]], keylog: Path | None = None
) -> list[dns.message.Message]:
    """Queries over one DoQ connection, one stream each (aioquic as the client)."""
    from aioquic.asyncio.client import connect
    from aioquic.quic.configuration import QuicConfiguration

    async def ask() -> list[dns.message.Message]:
        cfg = QuicConfiguration(is_client=True, alpn_protocols=["doq"], server_name=HOSTNAME)
        cfg.load_verify_locations(str(ca))
        handle = keylog.open("a") if keylog else None
        cfg.secrets_log_file = handle
        out = []
        try:
            async with connect(address, 853, configuration=cfg) as client:
                for name, qtype in queries:
                    reader, writer = await client.create_stream()
                    query = dns.message.make_query(name, qtype, use_edns=0, pad=128, id=0)
                    wire = query.to_wire()
                    writer.write(struct.pack("!H", len(wire)) + wire)
                    writer.write_eof()
                    data = await asyncio.wait_for(reader.read(), 5)
                    out.append(dns.message.from_wire(data[2:]))
        finally:
            if handle:
                handle.close()
        return out

    return asyncio.run(ask())


def s06_doq(ctx: Ctx) -> None:
    r = ctx.lab["doq"]
    desc = (
        "DNS over QUIC (RFC 9250, ALPN doq): two queries on two streams of one "
        "connection (aioquic client), answers padded to 468-byte blocks; then kdig +quic."
    )
    with ctx.recorder("06-doq", desc, f"host {r.address}", [ctx.doq()]) as rec:
        qs = [("www.lab.test", "A"), ("big.lab.test", "TXT")]
        answers = doq_ask(r.address, ctx.lab.ca, qs, rec.keylog)
        _need(all(a.answer for a in answers), "DoQ answers")
        rec.add(
            Exchange(
                "aioquic-doq",
                "aioquic",
                r.address,
                853,
                "doq",
                qs,
                "answered",
                sni=HOSTNAME,
                alpn=["doq"],
                tls_version="TLS1.3",
                query_padding=128,
                response_padding=RESPONSE_PAD,
            )
        )
        argv = kdig_argv(
            r.address,
            ["www.lab.test"],
            ca=ctx.lab.ca,
            hostname=HOSTNAME,
            source="127.0.0.61",
            extra=["+quic"],
        )
        res = run_kdig(argv, keylog=rec.keylog)
        _need(res.ok, res.stdout + res.stderr)
        rec.add(
            Exchange(
                "kdig-quic",
                "kdig",
                r.address,
                853,
                "doq",
                [("www.lab.test", "A")],
                "answered",
                client_addr="127.0.0.61",
                auth="strict",
                sni=HOSTNAME,
                alpn=["doq"],
                tls_version="TLS1.3",
                query_padding=KDIG_QUERY_PAD,
                response_padding=RESPONSE_PAD,
                notes="kdig 3.2.6 +quic: this build does speak DoQ",
            )
        )


PORT_STATES = (
    ("open", "answered", "127.0.0.71"),
    ("drop", "syn_unanswered", "127.0.0.72"),
    ("reset", "refused", "127.0.0.73"),
    ("icmp", "icmp_rejected", "127.0.0.74"),
    ("closed", "refused", "127.0.0.75"),
)


def s07_port_states(ctx: Ctx) -> None:
    fw = ctx.fw
    desc = (
        "Port 853 states seen by one client: open, DROP, reject with tcp reset, reject "
        "with icmp admin-prohibited, closed (no listener). RST and closed look identical."
    )
    with ctx.recorder(
        "07-port-states", desc, "port 853 or icmp", [fw.unbound], netns=fw.ns.name
    ) as rec:
        for state, outcome, src in PORT_STATES:
            addr = fw.addresses[state]
            res = run_kdig(
                kdig_argv(
                    addr, ["www.lab.test"], ca=ctx.lab.ca, hostname=HOSTNAME, source=src, timeout=2
                ),
                netns=fw.ns.name,
                keylog=rec.keylog,
            )
            _need(res.ok == (state == "open"), f"{state}: {res.stdout}")
            rec.add(
                Exchange(
                    f"port-{state}",
                    "kdig",
                    addr,
                    853,
                    "dot",
                    [("www.lab.test", "A")],
                    outcome,
                    client_addr=src,
                    auth="strict",
                    sni=HOSTNAME,
                    tls_version="TLS1.3" if state == "open" else None,
                    query_padding=KDIG_QUERY_PAD,
                    response_padding=RESPONSE_PAD if state == "open" else None,
                )
            )


def s08_interception(ctx: Ctx) -> None:
    r = ctx.lab["intercept"]
    valid_pin = ctx.lab.pki.leaf("valid").pin
    desc = (
        "A TLS-intercepting middlebox (dnsdist with a rogue-CA certificate for dns.test): "
        "the opportunistic client accepts it and its query is read by the middlebox; the "
        "strict and pinned clients abort during the handshake."
    )
    bpf = f"host {r.address} and tcp port 853"
    with ctx.recorder("08-interception", desc, bpf, [ctx.unbound("padded")]) as rec:
        res = run_kdig(
            kdig_argv(r.address, ["secret.lab.test"], source="127.0.0.81"), keylog=rec.keylog
        )
        _need(res.ok, res.stdout)
        rec.add(
            Exchange(
                "opportunistic",
                "kdig",
                r.address,
                853,
                "dot",
                [("secret.lab.test", "A")],
                "answered",
                client_addr="127.0.0.81",
                auth="opportunistic",
                sni=None,
                tls_version="TLS1.3",
                query_padding=KDIG_QUERY_PAD,
                notes="accepted the rogue certificate; answer unpadded "
                "(the middlebox forwards in cleartext)",
            )
        )
        for exid, src, opts in (
            ("strict", "127.0.0.82", {"ca": ctx.lab.ca, "hostname": HOSTNAME}),
            ("pinned", "127.0.0.83", {"pin": valid_pin, "hostname": HOSTNAME}),
        ):
            argv = kdig_argv(r.address, ["www.lab.test"], source=src, **opts)
            res = run_kdig(argv, keylog=rec.keylog)
            _need(not res.answers, f"{exid} must abort")
            rec.add(
                Exchange(
                    exid,
                    "kdig",
                    r.address,
                    853,
                    "dot",
                    [("www.lab.test", "A")],
                    "auth_failed",
                    client_addr=src,
                    auth="strict" if exid == "strict" else "pin",
                    sni=HOSTNAME,
                    tls_version="TLS1.3",
                    query_padding=KDIG_QUERY_PAD,
                )
            )
        done = run_getdns(getdns_argv(r.address, "mail.lab.test", auth_name=HOSTNAME), ctx.lab.ca)
        _need(not getdns_ok(done), "getdns strict must abort")
        rec.add(
            Exchange(
                "getdns-strict",
                "getdns_query",
                r.address,
                853,
                "dot",
                [("mail.lab.test", "A")],
                "auth_failed",
                client_addr="127.0.0.1",
                auth="strict",
                sni=HOSTNAME,
                tls_version="TLS1.3",
                query_padding=128,
            )
        )


def s09_office(ctx: Ctx) -> None:
    from tests.lab.office import record_office  # office imports Ctx from here

    record_office(ctx)


SCENARIOS: tuple[Callable[[Ctx], None], ...] = (
    s01_kdig_strict,
    s02_stubby,
    s03_plaintext,
    s04_fallback,
    s05_tls12,
    s06_doq,
    s07_port_states,
    s08_interception,
    s09_office,
)
