"""doh: DNS over HTTPS (RFC 8484) on TCP 443, over HTTP/2 with httpx: reachable, the
DoT certificate checks (name, expiry, SHA-1), a POST answered with
application/dns-message and the DNS response to our question, ALPN "h2", and whether
the response is padded.

Padding is reported, not judged: RFC 7830 §4 asks a responder to pad when the query was
padded, but a DoH front end that relays to its resolver in cleartext (dnsdist, most load
balancers) loses the option on the way. The note says so; ``padding.*`` judge DoT.

Runs only where reach.53 found TCP 443 open (or reach.53 did not run, or ``doh_port``
names another port, which reach.53 does not look at). Needs httpx with HTTP/2; without
it the check is skipped and says so.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import dns.flags
import dns.message

from dotaudit.probe.base import (
    Check,
    CheckContext,
    Level,
    Outcome,
    failed,
    not_applicable,
    passed,
    skipped,
    warned,
)
from dotaudit.probe.checks import _dns, _secure
from dotaudit.probe.tls_context import client_context
from dotaudit.probe.transport import ProbeError, SecureExchange

DOH_PORT = 443
MEDIA_TYPE = "application/dns-message"
MISSING = "DoH needs httpx with HTTP/2 (pip install 'httpx[http2]'), which is not installed"
GOOD_RCODES = ("NOERROR", "NXDOMAIN")
RETRY_LOOSE = ("verify",)
"""Only a chain the strict client refused is worth a second, unverified connection: the
TLS context leaves names to ``_secure.certificate``, so nothing else differs."""


def _have_httpx() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("httpx", "h2"))


def _media_type(content_type: str | None) -> str:
    """``application/dns-message; charset=x`` -> ``application/dns-message``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


class Doh(Check):
    id = "doh"
    title = "DNS over HTTPS: reachable, authenticated, answers"
    rfc = "RFC 8484 §4.1, §4.2, §6"
    level = Level.MAY
    advice = (
        "Fix the DoH service (RFC 8484): a valid certificate for the name, HTTP/2, and "
        "answers to POSTed application/dns-message queries."
    )
    after = ("reach.53",)
    budget = 12.0

    def run(self, ctx: CheckContext) -> Outcome:
        if not _have_httpx():
            return skipped(MISSING)
        port = int(_dns.option(ctx, "doh_port", DOH_PORT))
        path = str(_dns.option(ctx, "doh_path", "/dns-query"))
        seen = ctx.evidence("reach.53").get("tcp443", {})
        if port == DOH_PORT and "reach.53" in ctx.results and seen.get("class") != "open":
            return not_applicable(
                f"TCP {DOH_PORT} is not open ({seen.get('class', 'unknown')}): no DoH service "
                "to test"
            )
        query = ctx.make_query(pad=_dns.QUERY_BLOCK)
        query.id = 0  # RFC 8484 §4.1: 0 keeps responses cache-friendly
        wire = query.to_wire()

        def run(strict: bool) -> SecureExchange:
            context = client_context(verify=strict, ca_file=ctx.config.ca_file, alpn=("h2",))
            return ctx.net.doh_exchange(ctx.address, port, wire, ctx.op(), ctx.sni, context, path)

        exchange, verify_error = _secure.strict_then_loose(run, RETRY_LOOSE)
        evidence: dict[str, Any] = {
            "port": port,
            "path": path,
            "http_status": exchange.http_status,
            "http_version": exchange.http_version,
            "content_type": exchange.content_type,
            "alpn": exchange.alpn,
            "tls_version": exchange.tls_version,
            "handshake_ms": exchange.handshake_ms,
            "query_ms": exchange.query_ms,
            "query_len": len(wire),
        }
        status = exchange.http_status or 0
        if not 200 <= status < 300 or _media_type(exchange.content_type) != MEDIA_TYPE:
            return failed(f"HTTP {status} ({exchange.content_type or 'no content-type'}) "
                          "to a DoH POST", evidence)  # fmt: skip
        try:
            evidence.update(_secure.padding_evidence(exchange.wire))
        except ProbeError as exc:
            evidence["response_len"] = len(exchange.wire)
            return failed(f"HTTP {status} but {exc}", evidence)
        reply = _dns.parse(exchange.wire)
        evidence["answer"] = _dns.answers(reply)
        cert_problems = _secure.certificate(ctx, exchange.chain, verify_error, evidence)
        problems = _answer_problems(query, reply)
        if problems:
            return failed("; ".join(problems + cert_problems), evidence)
        if cert_problems:
            return warned("a strict client would refuse it: " + "; ".join(cert_problems),
                          evidence)  # fmt: skip
        if exchange.alpn != "h2" or exchange.http_version != "HTTP/2":
            return warned(f"answered over {exchange.http_version} (ALPN {exchange.alpn!r}), "
                          "not HTTP/2 (RFC 8484 §5.2 recommends it)", evidence)  # fmt: skip
        if evidence["rcode"] not in GOOD_RCODES:
            return warned(f"answered with {evidence['rcode']}", evidence)
        if not evidence["padded"]:
            # RFC 7830 §4: a server MUST pad its response when the query was padded.
            return warned(_unpadded_note(evidence), evidence)
        return passed(evidence)


def _answer_problems(query: dns.message.Message, reply: dns.message.Message) -> list[str]:
    """Why ``reply`` is not the DNS response to ``query``."""
    problems: list[str] = []
    if not reply.flags & dns.flags.QR:
        problems.append("the body is a DNS query, not a response")
    if reply.id != query.id:
        problems.append(f"the response has message ID {reply.id}, not {query.id}")
    if [(q.name, q.rdtype) for q in reply.question] != [(q.name, q.rdtype) for q in query.question]:
        problems.append("the response is for another question")
    return problems


def _unpadded_note(evidence: dict[str, Any]) -> str:
    return (
        f"the {evidence['response_len']}-octet response carries no padding although the "
        f"{evidence['query_len']}-octet query was padded (RFC 7830 §4, RFC 8467 §4.1), "
        "typical of a front end that relays to its resolver in cleartext"
    )
