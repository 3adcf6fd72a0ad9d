"""doh: DNS over HTTPS (RFC 8484) on TCP 443, over HTTP/2 with httpx: reachable, the
part-1 certificate checks, a POST answered with application/dns-message, and whether
the response is padded (RFC 8467 §4.1 applies to every encrypted transport).

Runs only where reach.53 found TCP 443 open (or reach.53 did not run). Needs httpx with
HTTP/2; without it the check is skipped and says so.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, failed, passed, skipped, warned
from dotaudit.probe.checks import _dns, _secure
from dotaudit.probe.tls import client_context
from dotaudit.probe.transport import SecureExchange

DOH_PORT = 443
MISSING = "DoH needs httpx with HTTP/2 (pip install 'httpx[http2]'), which is not installed"


def have_httpx() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("httpx", "h2"))


class Doh(Check):
    id = "doh"
    title = "DNS over HTTPS: reachable, authenticated, answers"
    rfc = "RFC 8484 §4.1, §6"
    level = Level.MAY
    after = ("reach.53",)
    budget = 12.0

    def run(self, ctx: CheckContext) -> Outcome:
        seen = ctx.evidence("reach.53").get("tcp443", {})
        if "reach.53" in ctx.results and seen.get("class") != "open":
            return skipped(f"TCP {DOH_PORT} is not open ({seen.get('class', 'unknown')})")
        if not have_httpx():
            return skipped(MISSING)
        port = int(_dns.option(ctx, "doh_port", DOH_PORT))
        path = str(_dns.option(ctx, "doh_path", "/dns-query"))
        query = ctx.make_query(pad=_dns.QUERY_BLOCK)
        query.id = 0  # RFC 8484 §4.1: 0 keeps responses cache-friendly
        wire = query.to_wire()

        def run(strict: bool) -> SecureExchange:
            context = client_context(verify=strict, ca_file=ctx.config.ca_file, alpn=("h2",))
            return ctx.net.doh_exchange(ctx.address, port, wire, ctx.op(), ctx.sni, context, path)

        exchange, verify_error = _secure.strict_then_loose(run)
        evidence: dict[str, Any] = {
            "port": port,
            "path": path,
            "http_status": exchange.http_status,
            "http_version": exchange.http_version,
            "content_type": exchange.content_type,
            "alpn": exchange.alpn,
            "tls_version": exchange.tls_version,
            "query_ms": exchange.query_ms,
        }
        if exchange.http_status != 200 or exchange.content_type != "application/dns-message":
            return failed(f"HTTP {exchange.http_status} ({exchange.content_type}) to a DoH POST",
                          evidence)  # fmt: skip
        evidence.update(_secure.padding_evidence(exchange.wire))
        cert_problems = _secure.certificate(ctx, exchange.chain, verify_error, evidence)
        if cert_problems:
            return warned("a strict client would refuse it: " + "; ".join(cert_problems),
                          evidence)  # fmt: skip
        if exchange.http_version != "HTTP/2":
            return warned(f"answered over {exchange.http_version}, not HTTP/2", evidence)
        return passed(evidence)
