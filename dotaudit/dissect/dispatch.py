"""Route flow payloads to the protocol parsers and turn what they find into events.

The flow table (capture layer) calls this object for every piece of reassembled TCP
data and every UDP datagram. Each flow is classified once, from its ports and first
bytes, and then only the matching parser ever sees its bytes: bulk traffic that is
neither DNS, TLS nor QUIC is marked ``ignore_payload`` so reassembly stops for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dotaudit.capture.flows import Flow
from dotaudit.capture.packet import TCP, Anomaly, Packet, addr_text, cached_addr_text
from dotaudit.dissect.dns import DnsTcpFramer, dns_fields, looks_like_dns
from dotaudit.dissect.fingerprint import ja3_pair, ja4
from dotaudit.dissect.http2 import H2cConnection, H2Item, H2Request, looks_like_h2c
from dotaudit.dissect.quic import (
    QuicInitialTracker,
    looks_like_quic_long_header,
    opens_as_unknown_version_initial,
)
from dotaudit.dissect.tls import (
    ALERT_DESCRIPTIONS,
    AlertItem,
    CertificateItem,
    ClientHelloItem,
    ServerHelloItem,
    TlsItem,
    TlsStream,
    cipher_name,
    is_tls13,
    looks_like_tls,
    parse_client_hello,
    version_name,
)
from dotaudit.errors import MalformedError
from dotaudit.model.events import (
    AnomalySeen,
    ConnectionSeen,
    DnsMessageSeen,
    Event,
    HttpRequestSeen,
    QuicInitialSeen,
    TlsAlertSeen,
    TlsCertificateSeen,
    TlsClientHelloSeen,
    TlsRecord,
    TlsServerHelloSeen,
    builder,
)

Emit = Callable[[Event], None]
KeepWhole = Callable[[Event], bool]
"""Asked with a ClientHello or QUIC Initial event: must every packet of its flow be read
(a detector counts them)? Flows it answers yes for are never bypassed."""

DNS_SERVICES = {53: "dns", 5353: "mdns", 5355: "llmnr"}
MAX_RECORDS_KEPT = 2000
"""TLS record lengths kept per direction for the connection event (padding inference)."""
WHOLE_FLOW_PORTS = frozenset({53, 853, 784, 8853, 5353, 5355})
"""DNS, DoT and DoQ ports: every record of these flows is a fact (DNS messages, DoT
record sizes and alerts, DoQ packet counts), so they are never bypassed."""


class _Ends:
    """Text forms of a flow's endpoints, made once per flow."""

    __slots__ = ("client", "cport", "server", "sport", "transport", "tunnel")

    def __init__(self, flow: Flow) -> None:
        # Once per flow: the few hosts of a capture are nearly always in the text cache.
        client = flow.client
        server = flow.server
        self.client = cached_addr_text(client) or addr_text(client)
        self.cport = flow.cport
        self.server = cached_addr_text(server) or addr_text(server)
        self.sport = flow.sport
        self.transport = "tcp" if flow.proto == TCP else "udp"
        tunnel = flow.tunnel
        self.tunnel = None if tunnel is None else tunnel.text


class _DnsApp:
    __slots__ = ("ends", "framers", "service")

    def __init__(self, ends: _Ends, service: str, tcp: bool) -> None:
        self.ends = ends
        self.service = service
        self.framers = (DnsTcpFramer(), DnsTcpFramer()) if tcp else None


class _TlsApp:
    __slots__ = ("client_stream", "ends", "keep", "records", "server_stream")

    def __init__(self, ends: _Ends) -> None:
        self.ends = ends
        self.keep = False
        """Never bypassed: DoT by ALPN, or a detector counts this flow's packets."""
        # The streams put each record straight into these lists, as TlsRecords.
        self.records: tuple[list[TlsRecord], list[TlsRecord]] = ([], [])
        self.client_stream = TlsStream(
            from_client=True, record_sink=self.records[0], sink_cap=MAX_RECORDS_KEPT
        )
        self.server_stream = TlsStream(
            from_client=False, record_sink=self.records[1], sink_cap=MAX_RECORDS_KEPT
        )

    @property
    def records_truncated(self) -> bool:
        return self.client_stream.records_dropped or self.server_stream.records_dropped


class _QuicApp:
    __slots__ = ("ends", "keep", "tracker")

    def __init__(self, ends: _Ends) -> None:
        self.ends = ends
        self.keep = False
        self.tracker = QuicInitialTracker()


class _OtherApp:
    __slots__ = ("ends",)

    def __init__(self, ends: _Ends) -> None:
        self.ends = ends


class _H2cApp:
    """Cleartext HTTP/2: its DNS messages go the DNS way, marked as service "doh"."""

    __slots__ = ("conn", "dns", "ends")

    def __init__(self, ends: _Ends, upgrade: bool) -> None:
        self.ends = ends
        self.conn = H2cConnection(upgrade=upgrade)
        self.dns = _DnsApp(ends, "doh", tcp=False)


App = _DnsApp | _TlsApp | _QuicApp | _OtherApp | _H2cApp
_App = (_DnsApp, _TlsApp, _QuicApp, _OtherApp, _H2cApp)


class Dispatcher:
    """Implements the capture layer's FlowConsumer protocol."""

    def __init__(self, file: str, emit: Emit, keep_whole: KeepWhole | None = None) -> None:
        self.file = file
        self.emit = emit
        self._keep_whole = keep_whole
        self._bypass: Callable[[Flow], None] | None = None

    def set_bypass(self, bypass: Callable[[Flow], None]) -> None:
        """Offered by a flow table that may stop reading flows this dispatcher is done
        with (see ``FlowTable.bypass``)."""
        self._bypass = bypass

    def _done_with(self, flow: Flow) -> None:
        """Nothing more about ``flow`` will be reported: let the table bypass it."""
        if (
            self._bypass is not None
            and flow.sport not in WHOLE_FLOW_PORTS
            and flow.cport not in WHOLE_FLOW_PORTS
        ):
            self._bypass(flow)

    # -- capture-layer anomalies -------------------------------------------------

    def on_anomaly(self, anomaly: Anomaly) -> None:
        self.emit(
            AnomalySeen(
                file=self.file,
                frame=anomaly.frame,
                ts=anomaly.ts,
                src=addr_text(anomaly.src) if anomaly.src else "",
                sport=anomaly.sport,
                dst=addr_text(anomaly.dst) if anomaly.dst else "",
                dport=anomaly.dport,
                transport=_transport_name(anomaly.proto),
                tunnel=anomaly.tunnel,
                what=anomaly.what,
                detail=anomaly.detail,
            )
        )

    def _where(self, ends: _Ends, from_client: bool, frame: int, ts: float) -> dict[str, Any]:
        """The fields every event shares, for a fact sent in one direction of a flow.

        Used for per-handshake events; the per-message DNS path builds its events inline.
        """
        src, sport, dst, dport = _direction(ends, from_client)
        return {
            "file": self.file,
            "frame": frame,
            "ts": ts,
            "src": src,
            "sport": sport,
            "dst": dst,
            "dport": dport,
            "transport": ends.transport,
            "tunnel": ends.tunnel,
        }

    def _flow_anomaly(
        self, ends: _Ends, from_client: bool, frame: int, ts: float, what: str, detail: str
    ) -> None:
        self.emit(
            AnomalySeen(
                **self._where(ends, from_client, frame, ts),
                what=what,
                detail=detail,
            )
        )

    # -- TCP ---------------------------------------------------------------------

    def on_stream_data(
        self, flow: Flow, from_client: bool, data: bytes, frame: int, ts: float
    ) -> int:
        """Route stream bytes; returns how many next bytes need not be delivered."""
        app = flow.app
        if app is None:
            app = self._classify_tcp(flow, data)
            flow.app = app
        if type(app) is _TlsApp:
            # The bulk path (about one call per TLS record): kept inline, no helper calls.
            stream = app.client_stream if from_client else app.server_stream
            try:
                items = stream.feed(data, frame, ts)
            except MalformedError as exc:
                self._flow_anomaly(app.ends, from_client, frame, ts, "tls_malformed", str(exc))
                flow.ignore_payload = True
                self._done_with(flow)
                return 0
            for item in items:  # handshake facts and alerts: the records went to app.records
                self._tls_item(app, from_client, item)
            if (
                self._bypass is not None
                and not app.keep
                and app.client_stream.handshake_over
                and app.server_stream.handshake_over
            ):
                # Only record sizes and encrypted alerts would follow: nothing reported
                # outside DoT, whose flows are kept whole.
                self._done_with(flow)
                return 0
            # Bulk application data: the rest of the record is only counted, not read.
            return stream.take_skip()
        if isinstance(app, _DnsApp):
            self._dns_tcp_data(flow, app, from_client, data, frame, ts)
        elif isinstance(app, _H2cApp):
            self._h2c_data(flow, app, from_client, data, frame, ts)
        return 0

    def _classify_tcp(self, flow: Flow, data: bytes) -> App:
        ends = _Ends(flow)
        service = DNS_SERVICES.get(flow.sport) or DNS_SERVICES.get(flow.cport)
        if service is not None:
            return _DnsApp(ends, service, tcp=True)
        if looks_like_tls(data):
            return _TlsApp(ends)
        if data[:1] in b"PGHOD" and looks_like_h2c(data):  # PRI preface or Upgrade: h2c
            return _H2cApp(ends, upgrade=data[:4] != b"PRI ")
        if len(data) > 2 and (data[0] << 8 | data[1]) >= 12 and looks_like_dns(data[2:]):
            return _DnsApp(ends, "dns", tcp=True)
        flow.ignore_payload = True
        self._done_with(flow)
        return _OtherApp(ends)

    def on_stream_gap(
        self, flow: Flow, from_client: bool, missing: int, frame: int, ts: float
    ) -> None:
        app = flow.app
        if isinstance(app, _TlsApp):
            (app.client_stream if from_client else app.server_stream).gap()
        elif isinstance(app, _DnsApp) and app.framers is not None:
            app.framers[0 if from_client else 1].reset()
        elif isinstance(app, _H2cApp):
            app.conn.gap(from_client)

    def _dns_tcp_data(
        self, flow: Flow, app: _DnsApp, from_client: bool, data: bytes, frame: int, ts: float
    ) -> None:
        assert app.framers is not None
        framer = app.framers[0 if from_client else 1]
        try:
            messages = framer.feed(data)
        except MalformedError as exc:
            framer.reset()
            self._flow_anomaly(app.ends, from_client, frame, ts, "dns_tcp_framing", str(exc))
            return
        for message in messages:
            self._dns_message(app, from_client, message, frame, ts)

    def _h2c_data(
        self, flow: Flow, app: _H2cApp, from_client: bool, data: bytes, frame: int, ts: float
    ) -> None:
        items: list[H2Item] = []
        error: str | None = None
        try:
            app.conn.feed(from_client, data, frame, ts, items)
        except MalformedError as exc:
            error = str(exc)
        ends = app.ends
        for item in items:
            if isinstance(item, H2Request):
                self.emit(
                    HttpRequestSeen(
                        **self._where(ends, True, item.frame, item.ts),
                        method=item.method,
                        authority=item.authority,
                        path=item.path,
                        content_type=item.content_type,
                        stream=item.stream,
                    )
                )
                if item.dns_query is not None:
                    self._dns_message(app.dns, True, item.dns_query, item.frame, item.ts)
                elif item.dns_error is not None:
                    self._flow_anomaly(ends, True, frame, ts, "doh_bad_dns_param", item.dns_error)
            elif item.truncated:
                detail = f"stream {item.stream}: body over the DNS message or buffer cap"
                self._flow_anomaly(ends, item.from_client, frame, ts, "doh_body_too_large", detail)
            else:
                self._dns_message(app.dns, item.from_client, item.body, item.frame, item.ts)
        if error is not None:
            self._flow_anomaly(ends, from_client, frame, ts, "http2_malformed", error)
        if error is not None or app.conn.done:
            flow.ignore_payload = True
            self._done_with(flow)

    def _tls_item(self, app: _TlsApp, from_client: bool, item: TlsItem) -> None:
        if isinstance(item, ClientHelloItem):
            self._client_hello(app, from_client, item)
        elif isinstance(item, ServerHelloItem):
            self._server_hello(app, from_client, item)
        elif isinstance(item, CertificateItem):
            self._certificates(app, from_client, item)
        elif isinstance(item, AlertItem):
            self._alert(app, from_client, item)

    def _client_hello(self, app: _TlsApp, from_client: bool, item: ClientHelloItem) -> None:
        hello = item.hello
        ja3_text, ja3_md5 = ja3_pair(hello)
        event = TlsClientHelloSeen(
            **self._where(app.ends, from_client, item.frame, item.ts),
            sni=hello.sni,
            alpn=hello.alpn,
            versions=_offered_versions(hello.supported_versions, hello.legacy_version),
            ciphers=len(hello.ciphers),
            ja4=ja4(hello),
            ja3=ja3_md5,
            ja3_string=ja3_text,
            ech=hello.ech,
            esni=hello.esni,
        )
        self.emit(event)
        if self._bypass is not None and (
            "dot" in hello.alpn or (self._keep_whole is not None and self._keep_whole(event))
        ):
            app.keep = True

    def _server_hello(self, app: _TlsApp, from_client: bool, item: ServerHelloItem) -> None:
        hello = item.hello
        if hello.is_hello_retry:
            # The client's compatibility ChangeCipherSpec must not hide its second hello.
            app.client_stream.hello_retry()
        elif is_tls13(hello.version):
            app.client_stream.set_tls13()
            app.server_stream.set_tls13()
        self.emit(
            TlsServerHelloSeen(
                **self._where(app.ends, from_client, item.frame, item.ts),
                version=version_name(hello.version),
                cipher=cipher_name(hello.cipher),
                alpn=hello.alpn,
            )
        )

    def _certificates(self, app: _TlsApp, from_client: bool, item: CertificateItem) -> None:
        # Imported on the first certificate: cryptography's x509 module costs about 25 ms
        # of startup, and TLS 1.3 or DNS-only captures never show a certificate.
        from dotaudit.x509 import parse_certificate

        where = self._where(app.ends, from_client, item.frame, item.ts)
        for position, der in enumerate(item.certs):
            try:
                cert = parse_certificate(der)
            except MalformedError as exc:
                self._flow_anomaly(
                    app.ends, from_client, item.frame, item.ts, "x509_malformed", str(exc)
                )
                continue
            self.emit(
                TlsCertificateSeen(
                    **where,
                    position=position,
                    subject=cert.subject,
                    issuer=cert.issuer,
                    san=cert.san,
                    not_before=cert.not_before,
                    not_after=cert.not_after,
                    spki_sha256=cert.spki_sha256,
                    self_signed=cert.self_signed,
                    signature_algorithm=cert.signature_algorithm,
                )
            )

    def _alert(self, app: _TlsApp, from_client: bool, item: AlertItem) -> None:
        name = (
            "encrypted"
            if item.encrypted
            else ALERT_DESCRIPTIONS.get(item.description, f"unknown_{item.description}")
        )
        self.emit(
            TlsAlertSeen(
                **self._where(app.ends, from_client, item.frame, item.ts),
                level=item.level,
                description=item.description,
                description_name=name,
                from_server=not from_client,
            )
        )

    # -- UDP ---------------------------------------------------------------------

    def on_datagram(self, flow: Flow, from_client: bool, pkt: Packet) -> None:
        self.on_udp_payload(flow, from_client, pkt.payload, pkt.frame, pkt.ts)

    def on_udp_payload(
        self, flow: Flow, from_client: bool, payload: bytes, frame: int, ts: float
    ) -> None:
        """A datagram as plain values (the flow table's no-Packet path)."""
        app = flow.app
        if app is None:
            app = self._classify_udp(flow, payload)
            flow.app = app
        if type(app) is _DnsApp:
            self._dns_message(app, from_client, payload, frame, ts)
        elif type(app) is _QuicApp:
            if from_client:
                self._quic_datagram(app, payload, frame, ts)
            if app.tracker.done:
                flow.ignore_payload = True  # short-header bulk: counted, never delivered
                if not app.keep:
                    self._done_with(flow)
        else:
            flow.ignore_payload = True
            self._done_with(flow)

    def _classify_udp(self, flow: Flow, payload: bytes) -> App:
        ends = _Ends(flow)
        service = DNS_SERVICES.get(flow.sport) or DNS_SERVICES.get(flow.cport)
        if service is not None:
            return _DnsApp(ends, service, False)
        if looks_like_quic_long_header(payload) or (
            payload[:1] >= b"\xc0" and opens_as_unknown_version_initial(payload)
        ):
            return _QuicApp(ends)
        if looks_like_dns(payload):
            return _DnsApp(ends, "dns", tcp=False)
        return _OtherApp(ends)

    def _quic_datagram(self, app: _QuicApp, payload: bytes, frame: int, ts: float) -> None:
        try:
            hello = app.tracker.feed(payload)
        except MalformedError as exc:
            self._flow_anomaly(app.ends, True, frame, ts, "quic_malformed", str(exc))
            app.tracker.done = True
            return
        if hello is None:
            return
        alpn: tuple[str, ...] = ()
        sni: str | None = None
        ech = False
        fingerprint = ""
        try:
            ch = parse_client_hello(hello.hello_body)
        except MalformedError as exc:
            self._flow_anomaly(app.ends, True, frame, ts, "quic_tls_malformed", str(exc))
        else:
            alpn, sni, ech, fingerprint = ch.alpn, ch.sni, ch.ech, ja4(ch, quic=True)
        event = QuicInitialSeen(
            **self._where(app.ends, True, frame, ts),
            version=hello.version_name,
            dcid=hello.dcid.hex(),
            sni=sni,
            alpn=alpn,
            ja4=fingerprint,
            ech=ech,
        )
        self.emit(event)
        if self._bypass is not None and self._keep_whole is not None and self._keep_whole(event):
            app.keep = True

    # -- DNS (both transports) ---------------------------------------------------

    def _dns_message(
        self, app: _DnsApp, from_client: bool, message: bytes, frame: int, ts: float
    ) -> None:
        try:
            (
                ident, response, opcode, rcode, flags, qdcount, ancount, _nscount,
                _arcount, qname, qtype, _qclass, edns, malformed, size,
            ) = dns_fields(message)  # fmt: skip
        except MalformedError as exc:
            # Not even the header and question parse: no dns record, only the anomaly.
            self._flow_anomaly(app.ends, from_client, frame, ts, "dns_unparseable", str(exc))
            return
        # One of these per DNS message: built field by field (see events.builder), in
        # line rather than through helpers, whose calls cost as much as the stores.
        ends = app.ends
        event = _DNS_MESSAGE()
        event.file = self.file
        event.frame = frame
        event.ts = ts
        if from_client:
            event.src = ends.client
            event.sport = ends.cport
            event.dst = ends.server
            event.dport = ends.sport
        else:
            event.src = ends.server
            event.sport = ends.sport
            event.dst = ends.client
            event.dport = ends.cport
        event.transport = ends.transport
        event.tunnel = ends.tunnel
        event.id = ident
        event.qr = "response" if response else "query"
        event.opcode = opcode
        event.rcode = rcode
        event.flags = flags
        event.qname = qname
        event.qtype = qtype
        event.qdcount = qdcount
        event.ancount = ancount
        event.edns = edns
        event.service = app.service
        event.size = size
        event.malformed = malformed is not None
        event.__class__ = DnsMessageSeen
        self.emit(event)
        if malformed is not None:
            self._flow_anomaly(ends, from_client, frame, ts, "dns_malformed", malformed)

    # -- end of flow ---------------------------------------------------------------

    def on_flow_end(self, flow: Flow) -> None:
        app = flow.app
        # One of these per flow, most of them short DNS flows: exact type tests, and the
        # record tuples are only built for TLS.
        fwd: tuple[TlsRecord, ...] = ()
        rev: tuple[TlsRecord, ...] = ()
        truncated = False
        kind: str | None = None
        ends: _Ends
        if type(app) is _DnsApp:
            kind, ends = "dns", app.ends
        elif type(app) is _TlsApp:
            fwd, rev = tuple(app.records[0]), tuple(app.records[1])
            truncated, kind, ends = app.records_truncated, "tls", app.ends
        elif type(app) is _QuicApp:
            kind, ends = "quic", app.ends
        else:
            ends = app.ends if isinstance(app, _App) else _Ends(flow)
        # Built field by field (see events.builder): one of these per flow.
        event = _CONNECTION()
        event.file = self.file
        event.frame = flow.first_frame
        event.ts = flow.start
        event.src = ends.client
        event.sport = ends.cport
        event.dst = ends.server
        event.dport = ends.sport
        event.transport = ends.transport
        event.tunnel = ends.tunnel
        event.outcome = flow.outcome
        event.start = flow.start
        event.end = flow.end
        event.first_frame = flow.first_frame
        event.last_frame = flow.last_frame
        event.packets_fwd = flow.packets_fwd
        event.packets_rev = flow.packets_rev
        event.bytes_fwd = flow.bytes_fwd
        event.bytes_rev = flow.bytes_rev
        event.syn_retransmits = flow.syn_retransmits
        event.handshake_seen = flow.handshake_seen
        event.mid_stream = flow.mid_stream
        event.ended_by = flow.ended_by
        event.closed_by = flow.closed_by
        event.icmp = flow.icmp
        event.icmp_frame = flow.icmp_frame
        event.rst_ttl = flow.rst_ttl
        event.server_ttl = flow.server_ttl
        event.tls_records_fwd = fwd
        event.tls_records_rev = rev
        event.tls_records_truncated = truncated or (
            kind == "tls" and flow.bypassed_after is not None
        )
        event.app = kind
        event.bypassed_after = flow.bypassed_after
        event.__class__ = ConnectionSeen
        self.emit(event)
        # The flow may linger (a stale expiry entry); its parser state and records may not.
        flow.app = None


def _direction(ends: _Ends, from_client: bool) -> tuple[str, int, str, int]:
    if from_client:
        return ends.client, ends.cport, ends.server, ends.sport
    return ends.server, ends.sport, ends.client, ends.cport


def _transport_name(proto: int) -> str:
    return {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}.get(proto, "")


def _offered_versions(supported: tuple[int, ...], legacy: int) -> tuple[str, ...]:
    offered = [v for v in supported if (v & 0x0F0F) != 0x0A0A] or [legacy]
    return tuple(version_name(v) for v in offered)


_DNS_MESSAGE = builder(DnsMessageSeen)
_CONNECTION = builder(ConnectionSeen)
