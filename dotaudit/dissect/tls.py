"""TLS handshake parsing: ClientHello/ServerHello bodies and a per-direction record stream.

Everything here reads hostile bytes. Parsers raise :class:`MalformedError` on input that
can never parse; text taken from the wire (SNI, ALPN) is escaped so that it holds only
printable ASCII (see :func:`escape_text`).
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dotaudit.errors import MalformedError
from dotaudit.model.events import TlsRecord, builder

EXT_SNI = 0x0000
EXT_GROUPS = 0x000A
EXT_EC_POINT_FORMATS = 0x000B
EXT_SIGNATURE_ALGORITHMS = 0x000D
EXT_ALPN = 0x0010
EXT_SUPPORTED_VERSIONS = 0x002B
EXT_ECH = 0xFE0D
EXT_ESNI = 0xFFCE

# RFC 8446 §4.1.3: a ServerHello with this random is a HelloRetryRequest.
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")


_PLAIN = re.compile(rb"[\x20-\x5b\x5d-\x7e]*")
"""Printable ASCII except the backslash: text that needs no escaping."""


def escape_text(raw: bytes) -> str:
    r"""Printable-ASCII text of wire bytes: other bytes and the backslash become ``\xNN``."""
    if _PLAIN.fullmatch(raw):
        return raw.decode("ascii")
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in raw)


class _Reader:
    """Bounds-checked cursor over one buffer; every overrun is a MalformedError."""

    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes, pos: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    def remaining(self) -> int:
        return self.end - self.pos

    def u8(self) -> int:
        if self.pos + 1 > self.end:
            raise MalformedError("truncated TLS field")
        v = self.buf[self.pos]
        self.pos += 1
        return v

    def u16(self) -> int:
        if self.pos + 2 > self.end:
            raise MalformedError("truncated TLS field")
        v = (self.buf[self.pos] << 8) | self.buf[self.pos + 1]
        self.pos += 2
        return v

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise MalformedError("TLS length runs past its container")
        v = self.buf[self.pos : self.pos + n]
        self.pos += n
        return v

    def sub(self, n: int) -> _Reader:
        if self.pos + n > self.end:
            raise MalformedError("TLS length runs past its container")
        r = _Reader(self.buf, self.pos, self.pos + n)
        self.pos += n
        return r

    def u16_list(self, nbytes: int) -> tuple[int, ...]:
        if nbytes % 2:
            raise MalformedError("odd length for a list of 16-bit values")
        data = self.take(nbytes)
        return tuple((data[i] << 8) | data[i + 1] for i in range(0, nbytes, 2))


@dataclass(frozen=True, slots=True)
class ClientHello:
    legacy_version: int
    record_version: int | None
    ciphers: tuple[int, ...]
    """As sent, GREASE included (fingerprints filter it)."""
    extensions: tuple[int, ...]
    """Extension types in wire order, GREASE included."""
    sni: str | None
    """First host_name entry, escaped; reported as sent even if it is an IP literal."""
    alpn: tuple[str, ...]
    supported_versions: tuple[int, ...]
    signature_algorithms: tuple[int, ...]
    groups: tuple[int, ...]
    ec_point_formats: tuple[int, ...]
    ech: bool
    esni: bool

    @property
    def sni_is_ip_literal(self) -> bool:
        """RFC 6066 §3 forbids literal IPv4/IPv6 addresses in server_name."""
        return self.sni is not None and _is_ip_literal(self.sni)


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


_TRUNCATED = "truncated TLS field"
_PAST = "TLS length runs past its container"


def _u16s(buf: bytes, pos: int, nbytes: int, end: int) -> tuple[int, ...]:
    if nbytes % 2:
        raise MalformedError("odd length for a list of 16-bit values")
    if pos + nbytes > end:
        raise MalformedError(_PAST)
    return struct.unpack_from(f"!{nbytes >> 1}H", buf, pos)


_CLIENT_EXTS_READ = frozenset(
    (
        EXT_SNI,
        EXT_ALPN,
        EXT_SUPPORTED_VERSIONS,
        EXT_SIGNATURE_ALGORITHMS,
        EXT_GROUPS,
        EXT_EC_POINT_FORMATS,
    )
)


def parse_client_hello(body: bytes, *, record_version: int | None = None) -> ClientHello:
    """Parse a ClientHello handshake body (the bytes after the 4-byte handshake header)."""
    # One hello per flow, on the hot path: plain offsets rather than a _Reader per field.
    # The checks and their messages follow _Reader's, in the same order.
    end = len(body)
    if end < 2:
        raise MalformedError(_TRUNCATED)
    legacy_version = (body[0] << 8) | body[1]
    pos = 34  # after the random
    if pos > end:
        raise MalformedError(_PAST)
    if pos >= end:
        raise MalformedError(_TRUNCATED)
    sid_len = body[pos]
    if sid_len > 32:
        raise MalformedError("ClientHello session_id longer than 32 bytes")
    pos += 1 + sid_len
    if pos > end:
        raise MalformedError(_PAST)
    if pos + 2 > end:
        raise MalformedError(_TRUNCATED)
    cs_len = (body[pos] << 8) | body[pos + 1]
    if cs_len == 0:
        raise MalformedError("ClientHello offers no cipher suites")
    ciphers = _u16s(body, pos + 2, cs_len, end)
    pos += 2 + cs_len
    if pos >= end:
        raise MalformedError(_TRUNCATED)
    comp_len = body[pos]
    if comp_len == 0:
        raise MalformedError("ClientHello offers no compression method")
    pos += 1 + comp_len
    if pos > end:
        raise MalformedError(_PAST)
    types: list[int] = []
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    versions: tuple[int, ...] = ()
    sigalgs: tuple[int, ...] = ()
    groups: tuple[int, ...] = ()
    point_formats: tuple[int, ...] = ()
    for etype, start, stop in _extensions(body, pos, end):
        types.append(etype)
        if etype not in _CLIENT_EXTS_READ:
            continue
        if etype == EXT_SNI:
            sni = _parse_sni(_Reader(body, start, stop))
        elif etype == EXT_ALPN:
            alpn = _parse_alpn(_Reader(body, start, stop))
        elif etype == EXT_SUPPORTED_VERSIONS:
            if start >= stop:
                raise MalformedError(_TRUNCATED)
            versions = _u16s(body, start + 1, body[start], stop)
        elif etype in (EXT_SIGNATURE_ALGORITHMS, EXT_GROUPS):
            if start + 2 > stop:
                raise MalformedError(_TRUNCATED)
            values = _u16s(body, start + 2, (body[start] << 8) | body[start + 1], stop)
            if etype == EXT_GROUPS:
                groups = values
            else:
                sigalgs = values
        elif etype == EXT_EC_POINT_FORMATS:
            if start >= stop:
                raise MalformedError(_TRUNCATED)
            if start + 1 + body[start] > stop:
                raise MalformedError(_PAST)
            point_formats = tuple(body[start + 1 : start + 1 + body[start]])
    # Filled by plain stores (see _shadow): the frozen __init__ costs a setattr call a field.
    hello = _CLIENT_HELLO_SHADOW()
    hello.legacy_version = legacy_version
    hello.record_version = record_version
    hello.ciphers = ciphers
    hello.extensions = tuple(types)
    hello.sni = sni
    hello.alpn = alpn
    hello.supported_versions = versions
    hello.signature_algorithms = sigalgs
    hello.groups = groups
    hello.ec_point_formats = point_formats
    hello.ech = EXT_ECH in types
    hello.esni = EXT_ESNI in types
    hello.__class__ = ClientHello
    made: ClientHello = hello
    return made


def _parse_sni(r: _Reader) -> str | None:
    if not r.remaining():
        return None  # a server's empty acknowledgement; never valid from a client, but harmless
    names = r.sub(r.u16())
    first: str | None = None
    while names.remaining():
        name_type = names.u8()
        name = names.take(names.u16())
        if name_type == 0 and first is None:
            first = escape_text(name)
    return first


def _parse_alpn(r: _Reader) -> tuple[str, ...]:
    protos = r.sub(r.u16())
    out: list[str] = []
    while protos.remaining():
        out.append(escape_text(protos.take(protos.u8())))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ServerHello:
    version: int
    """Negotiated: supported_versions (ext 43) when present, else the legacy version."""
    cipher: int
    alpn: str | None
    extensions: tuple[int, ...]
    is_hello_retry: bool


def _shadow(frozen: type) -> type[Any]:
    """A plain class with exactly ``frozen``'s slot layout: an instance is filled with plain
    attribute stores, then turned into ``frozen`` by ``__class__`` assignment (CPython
    allows it between identical layouts), and is an ordinary frozen instance from then on.
    """
    return type(f"_{frozen.__name__}Shadow", (), {"__slots__": vars(frozen)["__slots__"]})


_CLIENT_HELLO_SHADOW = _shadow(ClientHello)
_SERVER_HELLO_SHADOW = _shadow(ServerHello)


def parse_server_hello(body: bytes) -> ServerHello:
    """Parse a ServerHello handshake body (after the 4-byte handshake header)."""
    # Plain offsets like parse_client_hello; same checks and messages as _Reader's.
    end = len(body)
    if end < 2:
        raise MalformedError(_TRUNCATED)
    version = (body[0] << 8) | body[1]
    if end < 34:
        raise MalformedError(_PAST)
    is_hrr = body[2:34] == HRR_RANDOM
    if end < 35:
        raise MalformedError(_TRUNCATED)
    sid_len = body[34]
    if sid_len > 32:
        raise MalformedError("ServerHello session_id longer than 32 bytes")
    pos = 35 + sid_len
    if pos > end:
        raise MalformedError(_PAST)
    if pos + 3 > end:  # cipher suite and compression method
        raise MalformedError(_TRUNCATED)
    cipher = (body[pos] << 8) | body[pos + 1]
    pos += 3
    types: list[int] = []
    alpn: str | None = None
    for etype, start, stop in _extensions(body, pos, end):
        types.append(etype)
        if etype == EXT_SUPPORTED_VERSIONS:
            if start + 2 > stop:
                raise MalformedError(_TRUNCATED)
            version = (body[start] << 8) | body[start + 1]
        elif etype == EXT_ALPN:
            names = _parse_alpn(_Reader(body, start, stop))
            if len(names) != 1:
                raise MalformedError("server ALPN must name exactly one protocol")
            alpn = names[0]
    hello = _SERVER_HELLO_SHADOW()
    hello.version = version
    hello.cipher = cipher
    hello.alpn = alpn
    hello.extensions = tuple(types)
    hello.is_hello_retry = is_hrr
    hello.__class__ = ServerHello
    made: ServerHello = hello
    return made


def _extensions(body: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(type, data start, data end) of each extension in a hello's extension block.

    A hello may end without an extension block (pos == end); errors are raised as the
    walk reaches them, after the extensions before them were read.
    """
    if pos >= end:
        return
    if pos + 2 > end:
        raise MalformedError(_TRUNCATED)
    exts_end = pos + 2 + ((body[pos] << 8) | body[pos + 1])
    pos += 2
    if exts_end > end:
        raise MalformedError(_PAST)
    while pos < exts_end:
        if pos + 4 > exts_end:
            raise MalformedError(_TRUNCATED)
        etype = (body[pos] << 8) | body[pos + 1]
        start = pos + 4
        pos = start + ((body[pos + 2] << 8) | body[pos + 3])
        if pos > exts_end:
            raise MalformedError(_PAST)
        yield etype, start, pos


def is_tls13(version: int) -> bool:
    """TLS 1.3 or one of its drafts (0x7fNN) or Facebook's Fizz experiments (0xfbNN)."""
    return version == 0x0304 or (version >> 8) in (0x7F, 0xFB)


_VERSION_NAMES = {
    0x0304: "TLSv1.3",
    0x0303: "TLSv1.2",
    0x0302: "TLSv1.1",
    0x0301: "TLSv1.0",
    0x0300: "SSLv3",
    0x0002: "SSLv2",
}


def version_name(v: int) -> str:
    return _VERSION_NAMES.get(v) or f"0x{v:04x}"


_CIPHER_NAMES = {
    0x0004: "TLS_RSA_WITH_RC4_128_MD5",
    0x0005: "TLS_RSA_WITH_RC4_128_SHA",
    0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
    0x0033: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
    0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x0039: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
    0x003C: "TLS_RSA_WITH_AES_128_CBC_SHA256",
    0x003D: "TLS_RSA_WITH_AES_256_CBC_SHA256",
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256",
    0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
    0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    0x00FF: "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0x1304: "TLS_AES_128_CCM_SHA256",
    0x1305: "TLS_AES_128_CCM_8_SHA256",
    0x5600: "TLS_FALLBACK_SCSV",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC011: "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    0xC012: "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC023: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    0xC024: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    0xC027: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCAA: "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}


def cipher_name(c: int) -> str:
    return _CIPHER_NAMES.get(c) or f"0x{c:04x}"


ALERT_DESCRIPTIONS: dict[int, str] = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    21: "decryption_failed",
    22: "record_overflow",
    30: "decompression_failure",
    40: "handshake_failure",
    41: "no_certificate",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    60: "export_restriction",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    100: "no_renegotiation",
    109: "missing_extension",
    110: "unsupported_extension",
    111: "certificate_unobtainable",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    114: "bad_certificate_hash_value",
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
}

CT_CHANGE_CIPHER_SPEC = 20
CT_ALERT = 21
CT_HANDSHAKE = 22
CT_APPLICATION_DATA = 23
CT_HEARTBEAT = 24

# RFC 5246 §6.2.3: a TLSCiphertext fragment is at most 2^14 + 2048 bytes.
MAX_RECORD = 16384 + 2048


def _plausible_header(ctype: int, major: int, minor: int, length: int) -> bool:
    return (
        CT_CHANGE_CIPHER_SPEC <= ctype <= CT_HEARTBEAT
        and major == 3
        and minor <= 4
        and length <= MAX_RECORD
    )


def looks_like_tls(data: bytes) -> bool:
    """Whether the first bytes of a TCP stream can be a TLS record header.

    Needs at least 3 bytes; with 5 or more the length must be plausible too. Heartbeat
    (24) is not accepted as a first record.
    """
    if len(data) < 3 or not CT_CHANGE_CIPHER_SPEC <= data[0] <= CT_APPLICATION_DATA:
        return False
    if data[1] != 3 or data[2] > 4:
        return False
    return len(data) < 5 or 0 < ((data[3] << 8) | data[4]) <= MAX_RECORD


@dataclass(frozen=True, slots=True)
class ClientHelloItem:
    hello: ClientHello
    frame: int
    ts: float


@dataclass(frozen=True, slots=True)
class ServerHelloItem:
    hello: ServerHello
    frame: int
    ts: float


@dataclass(frozen=True, slots=True)
class CertificateItem:
    """A TLS <= 1.2 Certificate message (TLS 1.3 sends it encrypted): DER, leaf first."""

    certs: tuple[bytes, ...]
    frame: int
    ts: float


@dataclass(frozen=True, slots=True)
class AlertItem:
    """An alert record; ``level``/``description`` are -1 when it was encrypted."""

    level: int
    description: int
    encrypted: bool
    frame: int
    ts: float


@dataclass(frozen=True, slots=True)
class RecordItem:
    content_type: int
    length: int
    """The record header's length field."""
    frame: int
    ts: float


_new = object.__new__
_set_ctype, _set_length, _set_frame, _set_ts = (
    RecordItem.__dict__[name].__set__ for name in ("content_type", "length", "frame", "ts")
)


def _record_item(content_type: int, length: int, frame: int, ts: float) -> RecordItem:
    """RecordItem(...) without the frozen ``__init__``, which pays an ``object.__setattr__``
    call per field: this runs once per record on the hot path (about 2x faster)."""
    item = _new(RecordItem)
    _set_ctype(item, content_type)
    _set_length(item, length)
    _set_frame(item, frame)
    _set_ts(item, ts)
    return item


TlsItem = ClientHelloItem | ServerHelloItem | CertificateItem | AlertItem | RecordItem

_TLS_RECORD = builder(TlsRecord)

HS_CLIENT_HELLO = 1
HS_SERVER_HELLO = 2
HS_CERTIFICATE = 11
MAX_CERTS = 32

# What the stream does with the body of the current record.
_SKIP = 0
_HANDSHAKE = 1
_SMALL = 2  # alert or ChangeCipherSpec: keep the first two bytes only


class TlsStream:
    """One direction of a TLS connection, fed reassembled TCP bytes in order.

    Record bodies are never buffered except cleartext handshake data (capped by
    ``max_handshake`` bytes per direction, after which handshake parsing stops and
    ``handshake_truncated`` is set). Once a record header is read, the rest of its body
    is skipped by counting, so bulk application data costs a few comparisons per segment.

    After :meth:`gap` the stream resynchronises only on a segment that *starts* with a
    plausible record header (small DoT/DoH writes usually do); until then bytes are only
    dropped, and handshake parsing stays off for the rest of the stream because message
    boundaries are lost. A bad header after a gap returns to resync mode instead of
    raising. Without a gap, a bad record header raises :class:`MalformedError`, and so
    does a malformed handshake message; the stream is dead afterwards (feed returns []).
    """

    __slots__ = (
        "_alert",
        "_body_left",
        "_ctype",
        "_dead",
        "_expect_hrr_hello",
        "_gapped",
        "_hdr",
        "_hs",
        "_hs_budget",
        "_hs_off",
        "_hs_rec_version",
        "_hs_skip",
        "_length",
        "_mode",
        "_n_records",
        "_rec_version",
        "_resync",
        "_sink",
        "_sink_cap",
        "encrypted",
        "from_client",
        "handshake_truncated",
        "max_handshake",
        "max_records",
        "records_dropped",
        "records_truncated",
    )

    def __init__(
        self,
        from_client: bool,
        *,
        max_handshake: int = 256 * 1024,
        max_records: int = 4096,
        record_sink: list[TlsRecord] | None = None,
        sink_cap: int = 4096,
    ) -> None:
        """With ``record_sink``, every record (within ``max_records``) is appended there
        as a :class:`TlsRecord`, up to ``sink_cap`` of them (``records_dropped`` is set
        past that), instead of being returned as a :class:`RecordItem`: the connection
        event wants exactly those, and one object per record is half the cost of two.
        Records of a feed call that raises are taken back out, as they are never
        returned without a sink.
        """
        self.from_client = from_client
        self.max_handshake = max_handshake
        self.max_records = max_records
        self.encrypted = False
        self.records_truncated = False
        self.handshake_truncated = False
        self._hdr = b""
        self._body_left = 0
        self._ctype = 0
        self._length = 0
        self._mode = _SKIP
        self._hs = bytearray()
        self._hs_budget = max_handshake
        self._hs_skip = 0
        self._hs_off = False
        self._alert = b""
        self._n_records = 0
        self._rec_version = 0
        self._hs_rec_version: int | None = None
        self._resync = False
        self._gapped = False
        self._dead = False
        self._expect_hrr_hello = False
        self._sink = record_sink
        self._sink_cap = sink_cap
        self.records_dropped = False

    def set_tls13(self) -> None:
        """The server negotiated TLS 1.3: everything after its ServerHello is encrypted."""
        self.encrypted = True

    @property
    def handshake_over(self) -> bool:
        """Nothing more in this direction will be read as cleartext handshake: it is
        encrypted, application data has flowed, or handshake parsing stopped."""
        if self._expect_hrr_hello:
            return False
        if self.encrypted or self._dead or self._hs_off:
            return True
        if self._ctype == CT_APPLICATION_DATA:
            return True
        sink = self._sink
        return bool(sink) and sink[-1].content_type == CT_APPLICATION_DATA  # type: ignore[index]

    def hello_retry(self) -> None:
        """The server sent a HelloRetryRequest: the client's next ChangeCipherSpec is the
        middlebox-compatibility one and its second ClientHello is still cleartext."""
        self._expect_hrr_hello = True

    def gap(self) -> None:
        """Bytes are missing before the next feed: see the class docstring."""
        self._resync = True
        self._gapped = True
        self._hs_off = True
        self._hs.clear()
        self._hdr = b""
        self._body_left = 0
        self._mode = _SKIP

    def take_skip(self) -> int:
        """How many of the next bytes the caller may drop instead of feeding them.

        That is the rest of a record body that is only counted, less its last byte: that
        one is still fed, so the record ends on the frame that completes it. The dropped
        bytes count as fed.
        """
        left = self._body_left
        if left > 1 and self._mode == _SKIP and not self._dead:
            self._body_left = 1
            return left - 1
        return 0

    def feed(self, data: bytes, frame: int, ts: float) -> list[TlsItem]:
        left = self._body_left
        n = len(data)
        if left > n and self._mode == _SKIP:
            # Hot path: the whole segment is inside a record body we only count.
            self._body_left = left - n
            return []
        if self._dead:
            return []
        out: list[TlsItem] = []
        sink = self._sink
        if sink is not None:
            sink_mark, dropped = len(sink), self.records_dropped
        # One function with the record loop: this runs once per record on bulk flows.
        try:
            pos = 0
            if self._resync:
                if n < 5 or not _plausible_header(
                    data[0], data[1], data[2], (data[3] << 8) | data[4]
                ):
                    return out
                self._resync = False
            while pos < n:
                left = self._body_left
                if left:
                    mode = self._mode
                    if mode == _SKIP and left <= n - pos:
                        # The end of a body we only count (bulk data, never an alert or CCS,
                        # those are _SMALL): what _end_record does for it, without the call.
                        pos += left
                        self._body_left = 0
                        if self._n_records < self.max_records:
                            self._n_records += 1
                            if sink is None:
                                out.append(_record_item(self._ctype, self._length, frame, ts))
                            elif len(sink) < self._sink_cap:
                                # TlsRecord built in line (events.builder): once per record.
                                record = _TLS_RECORD()
                                record.ts = ts
                                record.frame = frame
                                record.length = self._length
                                record.content_type = self._ctype
                                record.__class__ = TlsRecord
                                sink.append(record)
                            else:
                                self.records_dropped = True
                        else:
                            self.records_truncated = True
                        continue
                    take = min(left, n - pos)
                    if mode == _HANDSHAKE:
                        self._handshake_bytes(data[pos : pos + take], frame, ts, out)
                    elif mode == _SMALL and len(self._alert) < 2:
                        self._alert += data[pos : pos + min(take, 2 - len(self._alert))]
                    pos += take
                    left -= take
                    self._body_left = left
                    if not left:
                        self._end_record(frame, ts, out)
                    continue
                hdr = self._hdr
                if hdr or n - pos < 5:
                    need = 5 - len(hdr)
                    hdr += data[pos : pos + need]
                    pos += min(need, n - pos)
                    if len(hdr) < 5:
                        self._hdr = hdr
                        return out
                    self._hdr = b""
                    h = hdr
                    start = 0
                else:
                    ctype = data[pos]
                    length = (data[pos + 3] << 8) | data[pos + 4]
                    if (
                        data[pos + 1] == 3
                        and data[pos + 2] <= 4
                        and length <= MAX_RECORD
                        and (
                            ctype == CT_APPLICATION_DATA
                            or (ctype == CT_HANDSHAKE and self.encrypted)
                        )
                    ):
                        # A record we only count (bulk data, encrypted handshake).
                        if pos + 5 + length <= n:
                            # Whole in this segment (DoT: one per segment): no state kept.
                            pos += 5 + length
                            if self._n_records < self.max_records:
                                self._n_records += 1
                                if sink is None:
                                    out.append(_record_item(ctype, length, frame, ts))
                                elif len(sink) < self._sink_cap:
                                    record = _TLS_RECORD()
                                    record.ts = ts
                                    record.frame = frame
                                    record.length = length
                                    record.content_type = ctype
                                    record.__class__ = TlsRecord
                                    sink.append(record)
                                else:
                                    self.records_dropped = True
                            else:
                                self.records_truncated = True
                            continue
                        # Its body runs past this segment (the bulk case): what the general
                        # header path below and the body step above do for it, without the
                        # checks already made. The rest of the segment is body.
                        self._ctype = ctype
                        self._rec_version = (data[pos + 1] << 8) | data[pos + 2]
                        self._length = length
                        self._body_left = length - (n - pos - 5)
                        self._alert = b""
                        self._mode = _SKIP
                        return out
                    h = data
                    start = pos
                    pos += 5
                ctype = h[start]
                length = (h[start + 3] << 8) | h[start + 4]
                if not _plausible_header(ctype, h[start + 1], h[start + 2], length):
                    if self._resync_allowed():
                        return out
                    raise MalformedError(
                        f"not a TLS record header: {bytes(h[start : start + 5])!r}"
                    )
                self._ctype = ctype
                self._rec_version = (h[start + 1] << 8) | h[start + 2]
                self._length = length
                self._body_left = length
                self._alert = b""
                if ctype == CT_HANDSHAKE and not self.encrypted and not self._hs_off:
                    self._mode = _HANDSHAKE
                elif ctype in (CT_ALERT, CT_CHANGE_CIPHER_SPEC):
                    self._mode = _SMALL
                else:
                    self._mode = _SKIP
                if not length:
                    self._end_record(frame, ts, out)
        except MalformedError:
            self._dead = True
            self._hs.clear()
            if sink is not None:
                del sink[sink_mark:]
                self.records_dropped = dropped
            raise
        return out

    def _resync_allowed(self) -> bool:
        """After a gap a bad header means we synchronised on noise: drop and resync."""
        if not self._gapped:
            return False
        self._resync = True
        self._hdr = b""
        self._body_left = 0
        return True

    def _end_record(self, frame: int, ts: float, out: list[TlsItem]) -> None:
        ctype = self._ctype
        if ctype == CT_ALERT:
            if not self.encrypted and self._length == 2:
                out.append(AlertItem(self._alert[0], self._alert[1], False, frame, ts))
            else:
                # A cleartext alert is two bytes; anything else is an encrypted one
                # (including TLS 1.3 client alerts when the caller never said 1.3).
                out.append(AlertItem(-1, -1, True, frame, ts))
        elif ctype == CT_CHANGE_CIPHER_SPEC:
            if self._expect_hrr_hello:
                self._expect_hrr_hello = False
            else:
                self.encrypted = True
        self._mode = _SKIP
        if self._n_records < self.max_records:
            self._n_records += 1
            sink = self._sink
            if sink is None:
                out.append(_record_item(ctype, self._length, frame, ts))
            elif len(sink) < self._sink_cap:
                sink.append(TlsRecord(ts=ts, frame=frame, length=self._length, content_type=ctype))
            else:
                self.records_dropped = True
        else:
            self.records_truncated = True

    def _handshake_bytes(self, chunk: bytes, frame: int, ts: float, out: list[TlsItem]) -> None:
        if self._hs_off:
            return
        if self._hs_skip:
            drop = min(self._hs_skip, len(chunk))
            self._hs_skip -= drop
            chunk = chunk[drop:]
            if not chunk:
                return
        if len(chunk) > self._hs_budget:
            self._stop_handshake()
            return
        self._hs_budget -= len(chunk)
        hs = self._hs
        if not hs:
            self._hs_rec_version = self._rec_version
        hs += chunk
        off = 0
        while len(hs) - off >= 4:
            mtype = hs[off]
            mlen = (hs[off + 1] << 16) | (hs[off + 2] << 8) | hs[off + 3]
            if mlen > self._hs_budget + len(hs) - off - 4:
                # Can never fit in what is left of the budget: give up on the handshake.
                self._stop_handshake()
                return
            end = off + 4 + mlen
            if end > len(hs):
                break
            self._message(mtype, bytes(hs[off + 4 : end]), frame, ts, out)
            off = end
            # The next message starts inside the current record.
            self._hs_rec_version = self._rec_version
        if off:
            del hs[:off]

    def _stop_handshake(self) -> None:
        self.handshake_truncated = True
        self._hs_off = True
        self._hs.clear()

    def _message(self, mtype: int, body: bytes, frame: int, ts: float, out: list[TlsItem]) -> None:
        if mtype == HS_CLIENT_HELLO and self.from_client:
            ch = parse_client_hello(body, record_version=self._hs_rec_version)
            out.append(ClientHelloItem(ch, frame, ts))
        elif mtype == HS_SERVER_HELLO and not self.from_client:
            sh = parse_server_hello(body)
            out.append(ServerHelloItem(sh, frame, ts))
            if sh.is_hello_retry:
                self._expect_hrr_hello = True  # its compat CCS precedes the real ServerHello
            elif is_tls13(sh.version):
                self.encrypted = True
        elif mtype == HS_CERTIFICATE:
            out.append(CertificateItem(parse_certificate_list(body), frame, ts))


def parse_certificate_list(body: bytes) -> tuple[bytes, ...]:
    """DER certificates of a TLS <= 1.2 Certificate message body (at most MAX_CERTS)."""
    r = _Reader(body)
    total = (r.u8() << 16) | r.u16()
    lst = r.sub(total)
    certs: list[bytes] = []
    while lst.remaining():
        clen = (lst.u8() << 16) | lst.u16()
        der = lst.take(clen)
        if len(certs) < MAX_CERTS:
            certs.append(der)
    return tuple(certs)
