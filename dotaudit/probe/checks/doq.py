"""doq: DNS over QUIC (RFC 9250) on UDP 853: reachable, the DoT certificate checks,
a query answered on its own stream with message ID 0 (§4.2.1), ALPN "doq" (§4.1) and
a padded response (§5.4: without QUIC-level padding DoQ MUST pad its messages).

Runs only where reach.53 saw a QUIC server on UDP 853 (or reach.53 did not run).
"""

from __future__ import annotations

from typing import Any

from dotaudit.probe.base import (
    Check,
    CheckContext,
    Level,
    Outcome,
    failed,
    not_applicable,
    passed,
    warned,
)
from dotaudit.probe.checks import _dns, _secure
from dotaudit.probe.transport import SecureExchange

DOQ_PORT = 853


class Doq(Check):
    id = "doq"
    title = "DNS over QUIC: reachable, authenticated, padded"
    rfc = "RFC 9250 §4.1, §4.2, §5.4"
    level = Level.MAY
    advice = (
        "Fix the DoQ service (RFC 9250): ALPN doq, a valid certificate for the name, "
        "message ID 0 and padded responses."
    )
    after = ("reach.53",)
    budget = 12.0

    def run(self, ctx: CheckContext) -> Outcome:
        seen = ctx.evidence("reach.53").get("udp853", {})
        if "reach.53" in ctx.results and seen.get("class") != "quic":
            return not_applicable(
                f"UDP {DOQ_PORT} does not speak QUIC ({seen.get('class', 'unknown')}): "
                "no DoQ service to test"
            )
        port = int(_dns.option(ctx, "doq_port", DOQ_PORT))
        query = ctx.make_query(pad=_dns.QUERY_BLOCK)
        query.id = 0  # RFC 9250 §4.2.1
        wire = query.to_wire()

        def run(strict: bool) -> SecureExchange:
            verify: bool | str = (ctx.config.ca_file or True) if strict else False
            return ctx.net.doq_exchange(ctx.address, port, wire, ctx.op(), ctx.sni, verify)

        exchange, verify_error = _secure.strict_then_loose(run)
        evidence: dict[str, Any] = {
            "port": port,
            "alpn": exchange.alpn,
            "handshake_ms": exchange.handshake_ms,
            "query_ms": exchange.query_ms,
            "query_len": len(wire),
            **_secure.padding_evidence(exchange.wire),
        }
        cert_problems = _secure.certificate(ctx, exchange.chain, verify_error, evidence)
        problems: list[str] = []
        if exchange.alpn != "doq":
            problems.append(f'ALPN is {exchange.alpn!r}, not "doq"')
        if evidence["message_id"] != 0:
            problems.append(f"the response has message ID {evidence['message_id']}, not 0")
        if not evidence["padded"]:
            problems.append("the response is not padded (RFC 9250 §5.4 MUST)")
        if problems:
            return failed("; ".join(problems + cert_problems), evidence)
        if cert_problems:
            return warned("a strict client would refuse it: " + "; ".join(cert_problems),
                          evidence)  # fmt: skip
        if not evidence["multiple_of_468"]:
            return warned(f"padded to {evidence['response_len']} octets, not a multiple of 468",
                          evidence)  # fmt: skip
        return passed(evidence)
