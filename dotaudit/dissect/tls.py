"""TLS handshake parsing: ClientHello/ServerHello bodies and a per-direction record stream.

Everything here reads hostile bytes. Parsers raise :class:`MalformedError` on input that
can never parse; text taken from the wire (SNI, ALPN) is escaped so that it holds only
printable ASCII (see :func:`escape_text`).
"""

from __future__ import annotations

from dataclasses import dataclass

from dotaudit.errors import MalformedError

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


def escape_text(raw: bytes) -> str:
    r"""Printable-ASCII text of wire bytes: other bytes and the backslash become ``\xNN``."""
    if all(0x20 <= b < 0x7F and b != 0x5C for b in raw):
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
    import ipaddress

    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def parse_client_hello(body: bytes, *, record_version: int | None = None) -> ClientHello:
    """Parse a ClientHello handshake body (the bytes after the 4-byte handshake header)."""
    r = _Reader(body)
    legacy_version = r.u16()
    r.take(32)  # random
    sid_len = r.u8()
    if sid_len > 32:
        raise MalformedError("ClientHello session_id longer than 32 bytes")
    r.take(sid_len)
    cs_len = r.u16()
    if cs_len == 0:
        raise MalformedError("ClientHello offers no cipher suites")
    ciphers = r.u16_list(cs_len)
    comp_len = r.u8()
    if comp_len == 0:
        raise MalformedError("ClientHello offers no compression method")
    r.take(comp_len)
    types: list[int] = []
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    versions: tuple[int, ...] = ()
    sigalgs: tuple[int, ...] = ()
    groups: tuple[int, ...] = ()
    point_formats: tuple[int, ...] = ()
    if r.remaining():
        exts = r.sub(r.u16())
        while exts.remaining():
            etype = exts.u16()
            data = exts.sub(exts.u16())
            types.append(etype)
            if etype == EXT_SNI:
                sni = _parse_sni(data)
            elif etype == EXT_ALPN:
                alpn = _parse_alpn(data)
            elif etype == EXT_SUPPORTED_VERSIONS:
                versions = data.u16_list(data.u8())
            elif etype == EXT_SIGNATURE_ALGORITHMS:
                sigalgs = data.u16_list(data.u16())
            elif etype == EXT_GROUPS:
                groups = data.u16_list(data.u16())
            elif etype == EXT_EC_POINT_FORMATS:
                point_formats = tuple(data.take(data.u8()))
    return ClientHello(
        legacy_version=legacy_version,
        record_version=record_version,
        ciphers=ciphers,
        extensions=tuple(types),
        sni=sni,
        alpn=alpn,
        supported_versions=versions,
        signature_algorithms=sigalgs,
        groups=groups,
        ec_point_formats=point_formats,
        ech=EXT_ECH in types,
        esni=EXT_ESNI in types,
    )


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
