"""dns.answer: the resolver answers ``--qname`` over DoT (RFC 7858 §3.3): rcode, answer
and latency on the shared connection."""

from __future__ import annotations

from typing import Any

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, passed, warned
from dotaudit.probe.checks import _dns

GOOD_RCODES = ("NOERROR", "NXDOMAIN")


class DnsAnswer(Check):
    id = "dns.answer"
    title = "A query is answered over DoT"
    rfc = "RFC 7858 §3.3"
    level = Level.MUST
    advice = (
        "The server accepts TLS but does not answer DNS over it: check that the DoT "
        "listener reaches the resolver and that the resolver answers the query name "
        "(--qname)."
    )
    depends_on = ("reach.853",)
    after = ("tls.resumption",)
    budget = 8.0

    def run(self, ctx: CheckContext) -> Outcome:
        conn = _dns.live(ctx)
        query = ctx.make_query(pad=_dns.QUERY_BLOCK)
        raw, reply, ms = _dns.exchange(ctx, conn, query)
        ctx.cache.setdefault("dns_answer_ms", ms)
        evidence: dict[str, Any] = {
            "qname": ctx.config.qname,
            "rcode": _dns.rcode(reply),
            "answer": _dns.answers(reply),
            "query_ms": ms,
            "response_len": len(raw),
            "tls_version": conn.version,
        }
        if evidence["rcode"] not in GOOD_RCODES:
            return warned(f"answered with {evidence['rcode']}", evidence)
        return passed(evidence)
