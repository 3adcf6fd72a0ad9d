"""Event factories for detector tests: sensible defaults, keyword-only overrides; and
``run_detectors``, which runs events through detectors the way ``analyze`` does.

Every factory returns a real frozen event from ``dotaudit.model.events``; override any
field by keyword (``dns_query(qname="example.com", src="10.0.0.7")``). Defaults model a
client 10.0.0.2 talking to a resolver 9.9.9.9 in file ``test.pcap`` at ts 1000.0.
Frame numbers come from a module counter so that distinct events get distinct frames
unless a test pins them.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable
from typing import Any, TypeVar, cast

from dotaudit.detect import runner
from dotaudit.detect.base import Context, Detector
from dotaudit.detect.registry import DETECTORS
from dotaudit.model.events import (
    AnomalySeen,
    ConnectionSeen,
    DnsMessageSeen,
    Edns,
    Event,
    HostIdentitySeen,
    QuicInitialSeen,
    TlsAlertSeen,
    TlsCertificateSeen,
    TlsClientHelloSeen,
    TlsRecord,
    TlsServerHelloSeen,
)
from dotaudit.model.policy import Policy
from dotaudit.model.report import AuditReport

D = TypeVar("D", bound=Detector)

CLIENT = "10.0.0.2"
SERVER = "9.9.9.9"
FILE = "test.pcap"
TS = 1000.0
APPLICATION_DATA = 23
HANDSHAKE = 22
ALERT = 21

_frames = itertools.count(1)


def next_frame() -> int:
    return next(_frames)


def _reserve_frames(count: int) -> int:
    """Reserve ``count`` consecutive frame numbers; returns the one before the first."""
    base = next_frame()
    for _ in range(count):
        next_frame()
    return base


def _base(kw: dict[str, Any], *, dport: int, transport: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "file": FILE,
        "frame": next_frame(),
        "ts": TS,
        "src": CLIENT,
        "sport": 40000,
        "dst": SERVER,
        "dport": dport,
        "transport": transport,
    }
    out.update(kw)
    return out


def edns(**kw: Any) -> Edns:
    values: dict[str, Any] = {"udp_size": 1232, "do": False}
    values.update(kw)
    return Edns(**values)


def dns_query(**kw: Any) -> DnsMessageSeen:
    """A client query (UDP 53 by default); ``edns=edns(ecs=...)`` adds EDNS facts."""
    values = _base({}, dport=53, transport="udp")
    values.update(
        id=0x1234,
        qr="query",
        opcode=0,
        rcode=0,
        flags=("rd",),
        qname="example.com",
        qtype=1,
        qdcount=1,
        ancount=0,
        edns=None,
        service="dns",
        size=40,
    )
    values.update(kw)
    return DnsMessageSeen(**values)


def dns_response(**kw: Any) -> DnsMessageSeen:
    """A resolver answer: endpoints swapped relative to ``dns_query``'s defaults."""
    values = _base({"src": SERVER, "sport": 53, "dst": CLIENT}, dport=40000, transport="udp")
    values.update(
        id=0x1234,
        qr="response",
        opcode=0,
        rcode=0,
        flags=("rd", "ra"),
        qname="example.com",
        qtype=1,
        qdcount=1,
        ancount=1,
        edns=None,
        service="dns",
        size=56,
    )
    values.update(kw)
    return DnsMessageSeen(**values)


def client_hello(**kw: Any) -> TlsClientHelloSeen:
    """A TLS 1.3 ClientHello to port 853 with SNI dns.quad9.net and ALPN dot."""
    values = _base({}, dport=853, transport="tcp")
    values.update(
        sni="dns.quad9.net",
        alpn=("dot",),
        versions=("TLSv1.3", "TLSv1.2"),
        ciphers=17,
        ja4="t13d1714h2_5b57614c22b0_3d5424432f57",
        ja3="0123456789abcdef0123456789abcdef",
        ja3_string="771,4865-4866,0-10-11,29-23,0",
        ech=False,
        esni=False,
    )
    values.update(kw)
    return TlsClientHelloSeen(**values)


def server_hello(**kw: Any) -> TlsServerHelloSeen:
    """The answering ServerHello (server to client) for ``client_hello``'s defaults."""
    values = _base({"src": SERVER, "sport": 853, "dst": CLIENT}, dport=40000, transport="tcp")
    values.update(version="TLSv1.3", cipher="TLS_AES_256_GCM_SHA384", alpn="dot")
    values.update(kw)
    return TlsServerHelloSeen(**values)


def certificate(**kw: Any) -> TlsCertificateSeen:
    """A leaf for dns.quad9.net, valid at the default ts (1970..2038), server to client."""
    values = _base({"src": SERVER, "sport": 853, "dst": CLIENT}, dport=40000, transport="tcp")
    values.update(
        position=0,
        subject="CN=dns.quad9.net",
        issuer="CN=Test CA,O=Test",
        san=("DNS:dns.quad9.net", "IP:9.9.9.9"),
        not_before="1970-01-01T00:00:00Z",
        not_after="2038-01-01T00:00:00Z",
        spki_sha256="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        self_signed=False,
        signature_algorithm="sha256WithRSAEncryption",
    )
    values.update(kw)
    return TlsCertificateSeen(**values)


def alert(**kw: Any) -> TlsAlertSeen:
    """A fatal handshake_failure alert from the server."""
    from_server = kw.get("from_server", True)
    if from_server:
        base = _base({"src": SERVER, "sport": 853, "dst": CLIENT}, dport=40000, transport="tcp")
    else:
        base = _base({}, dport=853, transport="tcp")
    base.update(level=2, description=40, description_name="handshake_failure", from_server=True)
    base.update(kw)
    return TlsAlertSeen(**base)


def quic_initial(**kw: Any) -> QuicInitialSeen:
    """A QUIC v1 Initial to UDP 853 offering ALPN doq."""
    values = _base({}, dport=853, transport="udp")
    values.update(
        version="1",
        dcid="0011223344556677",
        sni="dns.adguard-dns.com",
        alpn=("doq",),
        ja4="q13d0310h3_55b375c5d22e_cd85d2d88918",
        ech=False,
    )
    values.update(kw)
    return QuicInitialSeen(**values)


def tls_records(
    lengths: Iterable[int],
    *,
    start_ts: float = TS,
    step: float = 0.01,
    first_frame: int = 10,
    content_type: int = APPLICATION_DATA,
) -> tuple[TlsRecord, ...]:
    """TlsRecord tuples with increasing ts and frame numbers, one per length."""
    return tuple(
        TlsRecord(
            ts=start_ts + i * step,
            frame=first_frame + i,
            length=length,
            content_type=content_type,
        )
        for i, length in enumerate(lengths)
    )


def connection(
    *,
    records_fwd: Iterable[int] | None = None,
    records_rev: Iterable[int] | None = None,
    **kw: Any,
) -> ConnectionSeen:
    """A finished TCP flow to 853. ``records_fwd``/``records_rev`` take record lengths
    (application data) and build TlsRecord tuples with increasing ts; pass
    ``tls_records_fwd=...`` directly for full control."""
    values = _base({}, dport=853, transport="tcp")
    start = float(values["ts"])
    values.update(
        outcome="closed_fin",
        start=start,
        end=start + 1.0,
        first_frame=values["frame"],
        last_frame=values["frame"] + 20,
        packets_fwd=10,
        packets_rev=10,
        bytes_fwd=1000,
        bytes_rev=2000,
        handshake_seen=True,
        ended_by="close",
        closed_by="client",
        app="tls",
    )
    if records_fwd is not None:
        values["tls_records_fwd"] = tls_records(
            records_fwd, start_ts=start + 0.1, first_frame=values["frame"] + 2
        )
    if records_rev is not None:
        values["tls_records_rev"] = tls_records(
            records_rev, start_ts=start + 0.105, first_frame=values["frame"] + 3
        )
    values.update(kw)
    return ConnectionSeen(**values)


def anomaly(**kw: Any) -> AnomalySeen:
    values = _base({}, dport=53, transport="udp")
    values.update(what="dns_malformed", detail="test")
    values.update(kw)
    return AnomalySeen(**values)


def host_identity(
    mac: str, address: str | None, source: str = "arp", **kw: Any
) -> HostIdentitySeen:
    """One ``host_identity`` binding (``transport`` follows ``source``)."""
    transport = {"arp": "arp", "ndp": "icmpv6", "dhcp": "udp"}.get(source, "udp")
    values = _base({}, dport=0, transport=transport)
    values.update(src=address or "0.0.0.0", sport=0, mac=mac, address=address, source=source)
    values.update(hostname=None, client_id=None, prefix=None, router=False)
    values.update(kw)
    return HostIdentitySeen(**values)


def dot_session_events(
    *,
    version: str = "TLSv1.3",
    client_lengths: Iterable[int] = (),
    server_lengths: Iterable[int] = (),
    outcome: str = "closed_fin",
    sni: str | None = "dns.quad9.net",
    client: str = CLIENT,
    server: str = SERVER,
    cport: int = 40000,
    sport: int = 853,
    ts: float = TS,
    cipher: str | None = None,
    alpn: tuple[str, ...] = ("dot",),
    server_hello_seen: bool = True,
    file: str = FILE,
    certificates: Iterable[TlsCertificateSeen] = (),
) -> list[Event]:
    """The ordered events of one DoT flow: ClientHello, ServerHello, certificates
    (pass them pre-built; their endpoints are set to this flow's), then the connection.

    ``client_lengths``/``server_lengths`` are the DNS-carrying application-data records.
    For TLS 1.3 the wire also carries the client's Finished (an application-data record)
    first and the server's encrypted flight before its answers, so those are added here
    the way a real flow has them; ``DotSession.app_records`` strips them again.
    """
    client_lengths = list(client_lengths)
    server_lengths = list(server_lengths)
    if cipher is None:
        cipher = (
            "TLS_AES_256_GCM_SHA384"
            if version == "TLSv1.3"
            else ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
        )
    base_frame = _reserve_frames(len(client_lengths) + len(server_lengths) + 16)
    ch = client_hello(
        file=file,
        frame=base_frame + 4,
        ts=ts + 0.002,
        src=client,
        sport=cport,
        dst=server,
        dport=sport,
        sni=sni,
        alpn=alpn,
        versions=(version,) if version != "TLSv1.3" else ("TLSv1.3", "TLSv1.2"),
    )
    events: list[Event] = [ch]
    if server_hello_seen:
        events.append(
            server_hello(
                file=file,
                frame=base_frame + 5,
                ts=ts + 0.004,
                src=server,
                sport=sport,
                dst=client,
                dport=cport,
                version=version,
                cipher=cipher,
                alpn=alpn[0] if alpn else None,
            )
        )
    for cert in certificates:
        # Certificates belong to this flow whatever endpoints they were built with.
        events.append(
            dataclasses.replace(cert, file=file, src=server, sport=sport, dst=client, dport=cport)
        )
    fwd = list(client_lengths)
    rev = list(server_lengths)
    if version == "TLSv1.3" and server_hello_seen:
        fwd = [53, *fwd]  # client Finished
        rev = [2000, 53, *rev]  # EncryptedExtensions..Finished, then answers
    events.append(
        connection(
            file=file,
            frame=base_frame + 1,
            ts=ts,
            src=client,
            sport=cport,
            dst=server,
            dport=sport,
            outcome=outcome,
            start=ts,
            end=ts + 1.0,
            first_frame=base_frame + 1,
            last_frame=base_frame + 9 + len(fwd) + len(rev),
            tls_records_fwd=tls_records(fwd, start_ts=ts + 0.01, first_frame=base_frame + 6),
            tls_records_rev=tls_records(
                rev, start_ts=ts + 0.015, first_frame=base_frame + 7 + len(fwd)
            ),
        )
    )
    return events


def run_detectors(
    events: Iterable[Event],
    policy: Policy | Context | None = None,
    *,
    only: type[Detector] | Iterable[type[Detector]] = DETECTORS,
) -> runner.Detection:
    """Events (in emission order) through detectors as ``analyze`` runs them: the session
    stage first (so a detector sees ``DotSessionAssembled`` and ``OutboundPlaintextQuery``
    events made from the ones given), each event only to the detectors that subscribe to
    its type, and the policy's severity overrides applied once at the end. ``only`` picks
    the detectors (default: every registered one); read ``.findings`` and ``.sections``.
    """
    context = policy if isinstance(policy, Context) else Context(policy=policy or Policy())
    chosen = (only,) if isinstance(only, type) else tuple(only)
    return runner.run_detectors(events, context, chosen)


def fed_detector(
    cls: type[D], events: Iterable[Event], context: Context | Policy | None = None
) -> D:
    """A ``cls`` detector after ``events`` went through ``run_detectors``'s routing (the
    session stage included), for tests of one detector: call its ``finish()`` and
    ``sections()``. Its findings carry their natural severity; policy overrides are
    applied by the runner (test them through ``run_detectors``)."""
    if not isinstance(context, Context):
        context = Context(policy=context or Policy())
    detection = runner.DetectorRunner(context, (cls,))
    for event in events:
        detection.feed(event)
    return cast(D, detection.detectors[0])


def capped_dot_report() -> AuditReport:
    """An analyze report whose DoT table lists 2 of the 10 sessions its totals count."""
    report = AuditReport(kind="analyze", generated_at="2024-01-01T00:00:00Z")
    report.sections["dot_sessions"] = [
        {
            "outcome": "established",
            "client": "10.0.0.2",
            "server": "9.9.9.9",
            "start": 1.0,
            "padding": {"verdict": "unpadded"},
        },
        {"outcome": "refused", "client": "10.0.0.2", "server": "9.9.9.9", "start": 2.0},
    ]
    report.sections["dot_session_totals"] = [
        {"outcome": "established", "sessions": 7},
        {"outcome": "refused", "sessions": 3},
    ]
    return report
