"""reach.53: what else answers on the host: plaintext DNS on UDP and TCP 53, TCP 443
(DoH) and UDP 853 (DoQ). Measured for the blocked-port verdict and reported alongside:
the check passes when something answers, and is not applicable when nothing does (there
is no other transport on the host to report).
"""

from __future__ import annotations

from typing import Any

import dns.rcode

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, not_applicable, passed
from dotaudit.probe.transport import ProbeError

QUIC_WAIT = 1.5
"""A QUIC server answers Version Negotiation within one round trip; a DNS server on
UDP 853 silently drops the probe, so the wait is kept short."""


class Reach53(Check):
    id = "reach.53"
    title = "Plaintext DNS (53), DoH (TCP 443) and DoQ (UDP 853) reachability"
    rfc = "RFC 1035 §4.2; RFC 8484; RFC 9250 §4.1"
    level = Level.MAY
    budget = 14.0

    def run(self, ctx: CheckContext) -> Outcome:
        evidence: dict[str, Any] = {}
        query = ctx.make_query()
        try:
            reply, ms = ctx.net.udp_dns(ctx.address, 53, query, ctx.op())
            evidence["udp53"] = {"answered": True, "rcode": dns.rcode.to_text(reply.rcode()),
                                 "query_ms": ms}  # fmt: skip
        except ProbeError as exc:
            evidence["udp53"] = {"answered": False, "error_kind": exc.kind, "error": str(exc)}
        try:
            reply, timings = ctx.net.tcp_dns(ctx.address, 53, ctx.make_query(), ctx.op())
            evidence["tcp53"] = {"answered": True, "rcode": dns.rcode.to_text(reply.rcode()),
                                 **timings}  # fmt: skip
        except ProbeError as exc:
            evidence["tcp53"] = {"answered": False, "error_kind": exc.kind, "error": str(exc)}
        evidence["tcp443"] = ctx.net.tcp_connect(ctx.address, 443, ctx.op()).to_dict()
        try:
            versions = ctx.net.udp_quic_version_probe(ctx.address, 853, ctx.op(QUIC_WAIT))
            evidence["udp853"] = {"class": "quic", "versions": [f"{v:#010x}" for v in versions]}
        except ProbeError as exc:
            klass = {"timeout": "no-answer", "refused": "closed", "icmp": "icmp"}.get(
                exc.kind, "error"
            )
            evidence["udp853"] = {"class": klass, "error": str(exc)}
        answering = [
            what
            for what, answers in (
                ("UDP 53", evidence["udp53"]["answered"]),
                ("TCP 53", evidence["tcp53"]["answered"]),
                ("TCP 443", evidence["tcp443"]["class"] == "open"),
                ("QUIC on UDP 853", evidence["udp853"]["class"] == "quic"),
            )
            if answers
        ]
        if not answering:
            return not_applicable(
                "nothing answers on UDP or TCP 53, TCP 443 or UDP 853: no plaintext DNS, DoH "
                "or DoQ on this host",
                evidence,
            )
        return passed(evidence, "answering: " + ", ".join(answering))
