"""Cleartext HTTP/2 (h2c, RFC 9113) as far as DNS over HTTPS (RFC 8484) needs it.

A connection starts with the client preface (prior knowledge) or with an HTTP/1.1
request carrying ``Upgrade: h2c`` answered by ``101 Switching Protocols`` (RFC 7540
§3.2). Only HEADERS, CONTINUATION and PUSH_PROMISE are decoded (their header blocks
keep the HPACK state in step), plus DATA on streams whose content-type is
``application/dns-message``; every other frame is skipped without being buffered.

Out: :class:`H2Request` for each request head, :class:`H2Body` for each complete DNS
message body. Bounded: one frame buffer and one header block per direction, a capped
stream table (oldest evicted) and a cap on body bytes held per connection.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from dotaudit.dissect.hpack import HpackDecoder
from dotaudit.dissect.tls import escape_text
from dotaudit.errors import MalformedError

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DNS_MESSAGE = b"application/dns-message"

MAX_DNS_MESSAGE = 65_535
MAX_FRAME_BUFFER = MAX_DNS_MESSAGE + 256 + 9
"""A DNS message in one DATA frame, with padding and frame header."""
MAX_HEADER_BLOCK = 65_536
MAX_STREAMS = 256
MAX_BODY_BYTES = 1 << 20
"""DNS message bytes held across all of a connection's open streams."""
MAX_HTTP1_HEAD = 16_384
MAX_TEXT = 1024
"""Raw bytes of a path or authority kept for the event (escaped after the cut)."""
MAX_DNS_PARAM = 87_384
"""base64url characters of the largest DNS message."""

DATA, HEADERS, RST_STREAM, PUSH_PROMISE, CONTINUATION = 0, 1, 3, 5, 9
END_STREAM, END_HEADERS, PADDED, PRIORITY = 0x1, 0x4, 0x8, 0x20

_METHODS = (b"GET ", b"POST ", b"HEAD ", b"OPTIONS ", b"PUT ", b"DELETE ")
_UPGRADE = re.compile(rb"\r\nupgrade:([^\r\n]*)", re.IGNORECASE)
_B64URL = bytes.maketrans(b"-_", b"+/")


def looks_like_h2c(data: bytes) -> bool:
    """First client bytes of an h2c connection: the preface (or its start), or an upgrade."""
    if data[:4] == b"PRI ":
        return PREFACE.startswith(data[:24])
    return data.startswith(_METHODS) and _is_upgrade_request(data)


def _is_upgrade_request(data: bytes) -> bool:
    head = data[:MAX_HTTP1_HEAD]
    end = head.find(b"\r\n\r\n")
    if end >= 0:
        head = head[: end + 2]
    return any(
        token.strip().lower() == b"h2c"
        for match in _UPGRADE.finditer(head)
        for token in match.group(1).split(b",")
    )


def dns_param(path: bytes) -> bytes | None:
    """The DNS message in a GET's ``dns`` query parameter (RFC 8484 §4.1, base64url)."""
    query = path.find(b"?")
    if query < 0:
        return None
    for part in path[query + 1 :].split(b"&"):
        if part[:4] != b"dns=":
            continue
        value = part[4:]
        if len(value) > MAX_DNS_PARAM:
            raise MalformedError("doh: dns parameter too long")
        try:
            return base64.b64decode(
                value.translate(_B64URL) + b"=" * (-len(value) % 4), validate=True
            )
        except (binascii.Error, ValueError) as exc:
            raise MalformedError(f"doh: dns parameter is not base64url: {exc}") from None
    return None


@dataclass(frozen=True, slots=True)
class H2Request:
    stream: int
    method: str
    authority: str | None
    path: str
    """Escaped, cut at MAX_TEXT raw bytes."""
    content_type: str | None
    dns_query: bytes | None
    """Decoded ``dns`` parameter of a GET."""
    dns_error: str | None
    """Why the ``dns`` parameter could not be decoded."""
    upgrade: bool
    """Sent as HTTP/1.1 with ``Upgrade: h2c``."""
    frame: int
    ts: float


@dataclass(frozen=True, slots=True)
class H2Body:
    stream: int
    from_client: bool
    body: bytes
    truncated: bool
    """Longer than a DNS message, or over the connection's body budget: body is empty."""
    frame: int
    ts: float


H2Item = H2Request | H2Body


class _Side:
    """One direction of one stream."""

    __slots__ = ("body", "ended", "headers_seen", "truncated")

    def __init__(self) -> None:
        self.headers_seen = False
        self.ended = False
        self.body: bytearray | None = None
        self.truncated = False


class _Stream:
    __slots__ = ("sides",)

    def __init__(self) -> None:
        self.sides = (_Side(), _Side())


_PREFACE, _HTTP1_REQUEST, _HTTP1_RESPONSE, _FRAMES, _DEAD = range(5)


class _Direction:
    __slots__ = (
        "block",
        "block_end_stream",
        "block_push",
        "block_stream",
        "buf",
        "decoder",
        "http1_body",
        "mode",
        "skip",
    )

    def __init__(self, mode: int) -> None:
        self.mode = mode
        self.buf = bytearray()
        self.skip = 0
        self.decoder = HpackDecoder()
        self.block: bytearray | None = None
        """Header block awaiting CONTINUATION frames."""
        self.block_stream = 0
        self.block_push = False
        self.block_end_stream = False
        self.http1_body = 0
        """Bytes of an upgrade request's body still to come."""


class H2cConnection:
    """Both directions of one h2c connection. ``feed`` appends what completes to ``out``."""

    def __init__(self, upgrade: bool = False) -> None:
        self._dirs = (
            _Direction(_HTTP1_REQUEST if upgrade else _PREFACE),
            _Direction(_HTTP1_RESPONSE if upgrade else _FRAMES),
        )
        self._upgrade = upgrade
        self._streams: dict[int, _Stream] = {}
        self._body_bytes = 0
        self.evicted_streams = 0

    @property
    def done(self) -> bool:
        """Nothing more will be parsed in either direction."""
        return self._dirs[0].mode == _DEAD and self._dirs[1].mode == _DEAD

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def buffered(self) -> int:
        """Bytes held for this connection (buffers, header blocks, bodies, HPACK tables)."""
        total = self._body_bytes
        for d in self._dirs:
            total += len(d.buf) + len(d.block or b"") + d.decoder.table_size
        return total

    def gap(self, from_client: bool) -> None:
        """Bytes were lost: frame boundaries and the HPACK state are gone for good."""
        self._kill(self._dirs[0 if from_client else 1])

    def feed(
        self, from_client: bool, data: bytes, frame: int, ts: float, out: list[H2Item]
    ) -> None:
        d = self._dirs[0 if from_client else 1]
        try:
            while data and d.mode != _DEAD:
                if d.mode == _FRAMES:
                    self._frames(d, from_client, data, frame, ts, out)
                    return
                if d.mode == _PREFACE:
                    data = self._preface(d, data)
                elif d.mode == _HTTP1_REQUEST:
                    data = self._http1_request(d, data, frame, ts, out)
                else:
                    data = self._http1_response(d, data)
        except MalformedError:
            self._kill(d)
            raise

    def _kill(self, d: _Direction) -> None:
        d.mode = _DEAD
        d.buf = bytearray()
        d.block = None
        d.decoder = HpackDecoder()

    # -- connection start ------------------------------------------------------------

    def _preface(self, d: _Direction, data: bytes) -> bytes:
        need = len(PREFACE) - len(d.buf)
        d.buf += data[:need]
        rest = data[need:]
        if not PREFACE.startswith(d.buf):
            if self._upgrade:  # upgrade declined: the client goes on in HTTP/1.1
                self._kill(d)
                return b""
            raise MalformedError("http2: bad connection preface")
        if len(d.buf) < len(PREFACE):
            return b""
        d.buf = bytearray()
        d.mode = _FRAMES
        return rest

    def _http1_head(self, d: _Direction, data: bytes) -> tuple[list[bytes], bytes] | None:
        """Lines of a complete HTTP/1.1 head and the bytes after it; None for more bytes."""
        start = max(0, len(d.buf) - 3)
        d.buf += data
        end = d.buf.find(b"\r\n\r\n", start)
        if end < 0:
            if len(d.buf) > MAX_HTTP1_HEAD:
                raise MalformedError("http1: head too long")
            return None
        if end > MAX_HTTP1_HEAD:
            raise MalformedError("http1: head too long")
        lines = bytes(d.buf[:end]).split(b"\r\n")
        rest = bytes(d.buf[end + 4 :])
        d.buf = bytearray()
        return lines, rest

    def _http1_request(
        self, d: _Direction, data: bytes, frame: int, ts: float, out: list[H2Item]
    ) -> bytes:
        if d.http1_body:  # the upgrade request's body, stream 1 of the new connection
            take = data[: d.http1_body]
            d.http1_body -= len(take)
            self._body(1, True, take)
            if not d.http1_body:
                self._end(1, True, frame, ts, out)
                d.mode = _PREFACE
            return data[len(take) :]
        head = self._http1_head(d, data)
        if head is None:
            return b""
        lines, rest = head
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            raise MalformedError("http1: bad request line")
        fields: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon:
                raise MalformedError("http1: header line without colon")
            fields.setdefault(name.strip().lower(), value.strip())
        try:
            length = int(fields.get(b"content-length", b"0"))
        except ValueError:
            raise MalformedError("http1: bad content-length") from None
        if length < 0:
            raise MalformedError("http1: bad content-length")
        headers = [(b":method", parts[0]), (b":path", parts[1])]
        if b"host" in fields:
            headers.append((b":authority", fields[b"host"]))
        if b"content-type" in fields:
            headers.append((b"content-type", fields[b"content-type"]))
        self._headers(1, True, headers, not length, frame, ts, out, upgrade=True)
        d.http1_body = length
        d.mode = _HTTP1_REQUEST if length else _PREFACE
        return rest

    def _http1_response(self, d: _Direction, data: bytes) -> bytes:
        head = self._http1_head(d, data)
        if head is None:
            return b""
        lines, rest = head
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or parts[1] != b"101":
            self._kill(d)  # upgrade declined: HTTP/1.1 goes on, which is not parsed here
            self._kill(self._dirs[0])
            return b""
        d.mode = _FRAMES
        return rest

    # -- frames ----------------------------------------------------------------------

    def _frames(
        self,
        d: _Direction,
        from_client: bool,
        data: bytes,
        frame: int,
        ts: float,
        out: list[H2Item],
    ) -> None:
        if d.skip:
            if len(data) <= d.skip:
                d.skip -= len(data)
                return
            data = data[d.skip :]
            d.skip = 0
        buf = d.buf
        buf += data
        pos = 0
        size = len(buf)
        while size - pos >= 9 and d.mode == _FRAMES:
            length = buf[pos] << 16 | buf[pos + 1] << 8 | buf[pos + 2]
            ftype = buf[pos + 3]
            flags = buf[pos + 4]
            stream = int.from_bytes(buf[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
            if d.block is not None and ftype != CONTINUATION:
                raise MalformedError("http2: header block interrupted by another frame")
            if not self._wanted(d, from_client, ftype, flags, stream, length):
                if ftype == DATA and flags & END_STREAM:
                    self._end(stream, from_client, frame, ts, out)
                available = size - pos - 9
                if available < length:
                    d.skip = length - available
                    pos = size
                    break
                pos += 9 + length
                continue
            if size - pos - 9 < length:
                break
            payload = bytes(buf[pos + 9 : pos + 9 + length])
            pos += 9 + length
            self._frame(d, from_client, ftype, flags, stream, payload, frame, ts, out)
        del buf[:pos]

    def _wanted(
        self, d: _Direction, from_client: bool, ftype: int, flags: int, stream: int, length: int
    ) -> bool:
        """Is this frame decoded (and so buffered whole)?"""
        if ftype in (HEADERS, CONTINUATION, PUSH_PROMISE):
            block = len(d.block) if d.block is not None else 0
            if length + block > MAX_HEADER_BLOCK:
                raise MalformedError(f"http2: header block over {MAX_HEADER_BLOCK} bytes")
            return True
        if ftype == RST_STREAM:
            return length == 4
        if ftype != DATA:
            return False
        state = self._streams.get(stream)
        if state is None:
            return False
        side = state.sides[0 if from_client else 1]
        if side.body is None or side.truncated:
            return False
        if length > MAX_FRAME_BUFFER:
            self._truncate(side)
            return False
        return True

    def _frame(
        self,
        d: _Direction,
        from_client: bool,
        ftype: int,
        flags: int,
        stream: int,
        payload: bytes,
        frame: int,
        ts: float,
        out: list[H2Item],
    ) -> None:
        if ftype == DATA:
            self._body(stream, from_client, _unpad(payload, flags))
            if flags & END_STREAM:
                self._end(stream, from_client, frame, ts, out)
        elif ftype == HEADERS:
            if stream == 0:
                raise MalformedError("http2: HEADERS on stream 0")
            fragment = _unpad(payload, flags)
            if flags & PRIORITY:
                if len(fragment) < 5:
                    raise MalformedError("http2: HEADERS too short for its priority")
                fragment = fragment[5:]
            self._block(d, from_client, stream, flags, fragment, frame, ts, out, push=False)
        elif ftype == PUSH_PROMISE:
            fragment = _unpad(payload, flags)
            if len(fragment) < 4:
                raise MalformedError("http2: PUSH_PROMISE too short")
            self._block(d, from_client, stream, flags, fragment[4:], frame, ts, out, push=True)
        elif ftype == CONTINUATION:
            if d.block is None or stream != d.block_stream:
                raise MalformedError("http2: CONTINUATION without its HEADERS")
            d.block += payload
            if flags & END_HEADERS:
                self._block_done(d, from_client, frame, ts, out)
        elif ftype == RST_STREAM:
            self._drop(stream)

    def _block(
        self,
        d: _Direction,
        from_client: bool,
        stream: int,
        flags: int,
        fragment: bytes,
        frame: int,
        ts: float,
        out: list[H2Item],
        push: bool,
    ) -> None:
        d.block = bytearray(fragment)
        d.block_stream = stream
        d.block_push = push
        d.block_end_stream = bool(flags & END_STREAM) and not push
        if flags & END_HEADERS:
            self._block_done(d, from_client, frame, ts, out)

    def _block_done(
        self, d: _Direction, from_client: bool, frame: int, ts: float, out: list[H2Item]
    ) -> None:
        assert d.block is not None
        headers = d.decoder.decode(bytes(d.block))
        d.block = None
        if not d.block_push:  # a promised request only keeps the HPACK state in step
            self._headers(d.block_stream, from_client, headers, d.block_end_stream, frame, ts, out)

    # -- streams ---------------------------------------------------------------------

    def _stream(self, stream: int) -> _Stream:
        state = self._streams.get(stream)
        if state is None:
            if len(self._streams) >= MAX_STREAMS:
                oldest = next(iter(self._streams))
                self._drop(oldest)
                self.evicted_streams += 1
            state = self._streams[stream] = _Stream()
        return state

    def _drop(self, stream: int) -> None:
        state = self._streams.pop(stream, None)
        if state is not None:
            for side in state.sides:
                if side.body is not None:
                    self._body_bytes -= len(side.body)

    def _headers(
        self,
        stream: int,
        from_client: bool,
        headers: list[tuple[bytes, bytes]],
        end_stream: bool,
        frame: int,
        ts: float,
        out: list[H2Item],
        upgrade: bool = False,
    ) -> None:
        state = self._stream(stream)
        side = state.sides[0 if from_client else 1]
        fields: dict[bytes, bytes] = {}
        for name, value in headers:
            fields.setdefault(name, value)
        status = fields.get(b":status", b"")
        informational = status[:1] == b"1"
        if not side.headers_seen and not informational:  # not trailers, not 1xx
            side.headers_seen = True
            content_type = fields.get(b"content-type")
            if content_type is not None and _is_dns_message(content_type) and not end_stream:
                side.body = bytearray()
            if from_client:
                out.append(_request(stream, fields, upgrade, frame, ts))
        if end_stream:
            self._end(stream, from_client, frame, ts, out)

    def _body(self, stream: int, from_client: bool, chunk: bytes) -> None:
        state = self._streams.get(stream)
        if state is None:
            return
        side = state.sides[0 if from_client else 1]
        if side.body is None or side.truncated:
            return
        if (
            len(side.body) + len(chunk) > MAX_DNS_MESSAGE
            or self._body_bytes + len(chunk) > MAX_BODY_BYTES
        ):
            self._truncate(side)
            return
        side.body += chunk
        self._body_bytes += len(chunk)

    def _truncate(self, side: _Side) -> None:
        if side.body is not None:
            self._body_bytes -= len(side.body)
            side.body = bytearray()
        side.truncated = True

    def _end(
        self, stream: int, from_client: bool, frame: int, ts: float, out: list[H2Item]
    ) -> None:
        state = self._streams.get(stream)
        if state is None:
            return
        side = state.sides[0 if from_client else 1]
        side.ended = True
        if side.body is not None:
            body = bytes(side.body)
            self._body_bytes -= len(body)
            side.body = None
            out.append(H2Body(stream, from_client, body, side.truncated, frame, ts))
        if state.sides[0].ended and state.sides[1].ended:
            del self._streams[stream]


def _unpad(payload: bytes, flags: int) -> bytes:
    if not flags & PADDED:
        return payload
    if not payload or payload[0] + 1 > len(payload):
        raise MalformedError("http2: padding longer than the frame")
    return payload[1 : len(payload) - payload[0]]


def _is_dns_message(content_type: bytes) -> bool:
    return content_type.split(b";", 1)[0].strip().lower() == DNS_MESSAGE


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else escape_text(raw[:MAX_TEXT])


def _request(
    stream: int, fields: dict[bytes, bytes], upgrade: bool, frame: int, ts: float
) -> H2Request:
    method = fields.get(b":method", b"")
    path = fields.get(b":path", b"")
    query: bytes | None = None
    error: str | None = None
    if method == b"GET":
        try:
            query = dns_param(path)
        except MalformedError as exc:
            error = str(exc)
    return H2Request(
        stream=stream,
        method=escape_text(method[:32]),
        authority=_text(fields.get(b":authority", fields.get(b"host"))),
        path=escape_text(path[:MAX_TEXT]),
        content_type=_text(fields.get(b"content-type")),
        dns_query=query,
        dns_error=error,
        upgrade=upgrade,
        frame=frame,
        ts=ts,
    )
