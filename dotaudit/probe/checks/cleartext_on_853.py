"""cleartext-on-853: plaintext DNS sent to the DoT port must get no DNS answer, neither
at once nor after a failed TLS handshake (RFC 7858 §3.1)."""

from __future__ import annotations

import struct
from typing import Any

import dns.exception
import dns.message

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, failed, passed

LISTEN_S = 1.5
"""How long to wait for a (wrong) answer; a correct server stays silent or closes."""

BAD_CLIENT_HELLO = bytes.fromhex("16030100040100000000")
"""A handshake record holding a ClientHello of length 0: any TLS server must reject it."""


def _skip_tls_records(data: bytes) -> bytes:
    pos = 0
    while len(data) - pos >= 5 and data[pos] in (20, 21, 22, 23) and data[pos + 1] == 3:
        (size,) = struct.unpack_from("!H", data, pos + 3)
        pos += 5 + size
    return data[pos:]


def answered(data: bytes, query: dns.message.Message) -> bool:
    """True when ``data`` holds a framed DNS response to ``query``."""
    rest = _skip_tls_records(data)
    while len(rest) >= 2:
        (size,) = struct.unpack_from("!H", rest)
        body = rest[2 : 2 + size]
        if len(body) < size or size < 12:
            return False
        try:
            reply = dns.message.from_wire(body, ignore_trailing=True)
        except (dns.exception.DNSException, ValueError, IndexError, struct.error):
            return False
        if reply.id == query.id and reply.flags & 0x8000:
            return True
        rest = rest[2 + size :]
    return False


def _describe(data: bytes, end: str) -> dict[str, Any]:
    first = data[:1].hex() or None
    return {"bytes_received": len(data), "first_byte": first, "ended": end,
            "tls_alert": bool(data[:1] == b"\x15")}  # fmt: skip


class CleartextOn853(Check):
    id = "cleartext-on-853"
    title = "No answer to cleartext DNS on the DoT port"
    rfc = "RFC 7858 §3.1"
    level = Level.MUST
    advice = (
        "The DoT port must speak only TLS (RFC 7858 §3.1): stop the plaintext DNS listener on it."
    )
    depends_on = ("reach.853",)
    budget = 8.0

    def run(self, ctx: CheckContext) -> Outcome:
        evidence: dict[str, Any] = {}
        bad: list[str] = []
        for label, preface in (("plain", b""), ("after_failed_handshake", BAD_CLIENT_HELLO)):
            query = ctx.make_query()
            wire = query.to_wire()
            payloads = (
                [preface, struct.pack("!H", len(wire)) + wire]
                if preface
                else [struct.pack("!H", len(wire)) + wire]
            )
            data, end, timings = ctx.net.tcp_exchange(
                ctx.address, ctx.port, payloads, ctx.op(), listen_s=LISTEN_S
            )
            evidence[label] = {**_describe(data, end), **timings}
            if answered(data, query):
                evidence[label]["dns_answer"] = True
                bad.append(label.replace("_", " "))
        if bad:
            return failed(f"answered cleartext DNS on port {ctx.port} ({', '.join(bad)})",
                          evidence)  # fmt: skip
        return passed(evidence)
