"""Facts the dissectors emit: one frozen record per thing seen on the wire.

Events carry no verdicts. Every record names the file, the 1-based frame number,
the capture timestamp and the flow's endpoints, so a detector's finding can point
an admin at the exact frames behind it. ``to_dict`` is the stable ``dotaudit events``
JSON schema (``EVENTS_SCHEMA``), documented in ``docs/events.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

EVENTS_SCHEMA = "dotaudit.events/1"


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    type: ClassVar[str] = "event"
    file: str
    frame: int
    ts: float
    src: str
    sport: int
    dst: str
    dport: int
    transport: str

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for name in _field_names(type(self)):
            out[name] = _plain(getattr(self, name))
        return out


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(cls))
        _FIELD_NAMES[cls] = names
    return names


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: _plain(getattr(value, name)) for name in _field_names(type(value))}
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Edns:
    udp_size: int
    do: bool
    version: int = 0
    padding: int | None = None
    """Length of the padding option's data, None when the option is absent."""
    keepalive: int | None = None
    """EDNS TCP keepalive timeout in units of 100 ms; -1 when the option has no value."""
    ecs: str | None = None
    """Client Subnet as ``address/source-prefix``."""
    nsid: str | None = None
    """NSID as hex; empty string for an empty (request) option."""
    options: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsMessageSeen(Event):
    type: ClassVar[str] = "dns"
    id: int
    qr: str
    """"query" or "response"."""
    opcode: int
    rcode: int
    flags: tuple[str, ...]
    qname: str | None
    """Question name without the trailing dot; None when there is no question."""
    qtype: int | None
    qdcount: int
    ancount: int
    edns: Edns | None
    service: str = "dns"
    """"dns", "mdns" or "llmnr"."""
    size: int = 0
    malformed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsClientHelloSeen(Event):
    type: ClassVar[str] = "tls_client_hello"
    sni: str | None
    alpn: tuple[str, ...]
    versions: tuple[str, ...]
    """Offered versions, GREASE removed: from supported_versions, else the legacy version."""
    ciphers: int
    ja4: str
    ja3: str
    ja3_string: str
    ech: bool
    esni: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsServerHelloSeen(Event):
    type: ClassVar[str] = "tls_server_hello"
    version: str
    cipher: str
    alpn: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsCertificateSeen(Event):
    type: ClassVar[str] = "tls_certificate"
    position: int
    """0 is the leaf."""
    subject: str
    issuer: str
    san: tuple[str, ...]
    not_before: str
    not_after: str
    spki_sha256: str
    self_signed: bool
    signature_algorithm: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsAlertSeen(Event):
    type: ClassVar[str] = "tls_alert"
    level: int
    description: int
    description_name: str
    from_server: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class QuicInitialSeen(Event):
    type: ClassVar[str] = "quic_initial"
    version: str
    dcid: str
    sni: str | None
    alpn: tuple[str, ...]
    ja4: str
    ech: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsRecord:
    ts: float
    frame: int
    length: int
    content_type: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionSeen(Event):
    """A TCP or UDP flow that ended (closed, expired, or still open at capture end).

    ``src``/``sport`` is the initiator when it is known (the SYN sender), else the
    sender of the first packet seen. ``frame``/``ts`` are those of the first packet.
    """

    type: ClassVar[str] = "connection"
    outcome: str
    """One of OUTCOMES."""
    start: float
    end: float
    first_frame: int
    last_frame: int
    packets_fwd: int
    packets_rev: int
    bytes_fwd: int
    bytes_rev: int
    syn_retransmits: int = 0
    handshake_seen: bool = False
    mid_stream: bool = False
    """No SYN was seen: the capture started inside this connection."""
    ended_by: str = "capture_end"
    """"close", "idle_timeout" or "capture_end"."""
    closed_by: str | None = None
    """"client" or "server" for FIN/RST closes."""
    icmp: str | None = None
    """ICMP error that rejected the flow, e.g. "admin-prohibited"."""
    icmp_frame: int | None = None
    rst_ttl: int | None = None
    server_ttl: int | None = None
    tls_records_fwd: tuple[TlsRecord, ...] = field(default=())
    tls_records_rev: tuple[TlsRecord, ...] = field(default=())
    tls_records_truncated: bool = False
    app: str | None = None
    """What the payload was recognised as: "tls", "dns", "quic" or None."""


OUTCOMES = (
    "established",  # TCP handshake completed, no close seen (open at end, or idle-expired)
    "closed_fin",
    "closed_rst",  # RST after the TCP handshake (or mid-stream); see closed_by
    "refused",  # the SYN was answered with RST
    "syn_unanswered",  # SYN (and syn_retransmits retransmits) with no answer at all
    "icmp_rejected",  # an ICMP/ICMPv6 error quoting this flow; see icmp
    "udp",  # a UDP flow that went idle or was open at capture end
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AnomalySeen(Event):
    type: ClassVar[str] = "anomaly"
    what: str
    """Stable short name, e.g. "tcp_gap", "dns_malformed", "snaplen_truncated"."""
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequestSeen(Event):
    """A request head in cleartext HTTP/2 (h2c), where DNS over HTTPS can travel unencrypted."""

    type: ClassVar[str] = "http_request"
    method: str
    authority: str | None
    """``:authority`` (or ``Host``), escaped; None when absent."""
    path: str
    """``:path``, escaped, cut at 1024 bytes."""
    content_type: str | None
    stream: int
    """HTTP/2 stream id (1 for the HTTP/1.1 request that asked for the upgrade)."""
    h2c: bool = True
    """Cleartext HTTP/2: prior-knowledge preface or ``Upgrade: h2c``."""
