"""rst-injection: is a reset on the DoT port made by the server, or by a middlebox on
the path?

As root, one raw SYN each to the DoT port, 53 and 443 (scapy, in transport/raw.py) gives
the TTL and IP ID of whatever answers. The server's own replies (SYN-ACK or RST on
53/443) share its path length, so a RST on the DoT port whose TTL differs came from
elsewhere: a middlebox injecting resets. Not applicable when the port sent no reset;
without root it is skipped (connect() cannot tell whose reset it is).
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
    skipped,
    warned,
)
from dotaudit.probe.transport import can_send_raw

REFERENCE_PORTS = (53, 443)


class RstInjection(Check):
    id = "rst-injection"
    title = "Resets on the DoT port come from the server, not the path"
    rfc = "RFC 8310 §5; RFC 7858 §3.1"
    level = Level.SHOULD
    advice = (
        "A middlebox on the path resets DoT connections: find it (a firewall or DPI box "
        "between the clients and the resolver) and let the DoT port through."
    )
    after = ("reach.853",)
    budget = 10.0

    def run(self, ctx: CheckContext) -> Outcome:
        port = ctx.port
        reach = ctx.evidence("reach.853").get("class")
        if reach != "refused":
            return not_applicable(
                f"{port} sent no reset ({reach or 'not measured'}): nothing to attribute",
                {"reach_853": reach},
            )
        if not can_send_raw():
            return skipped(
                f"{port} answered with a RST, but telling an injected reset from the server's "
                "own needs a raw SYN, which needs root",
                {"method": "connect", "reach_853": reach},
            )
        wait = min(ctx.config.timeout, 2.0)
        replies = {port: ctx.net.raw_syn(ctx.address, port, ctx.op(wait).remaining())
                   for port in (ctx.port, *REFERENCE_PORTS)}  # fmt: skip
        evidence: dict[str, Any] = {
            "method": "raw-syn",
            "replies": {str(port): reply.to_dict() for port, reply in replies.items()},
        }
        main = replies[ctx.port]
        refs = {
            port: r.ttl
            for port, r in replies.items()
            if port != ctx.port and r.kind in ("syn-ack", "rst") and r.ttl is not None
        }
        evidence["reference_ttls"] = {str(p): t for p, t in refs.items()}
        if main.kind != "rst":
            return not_applicable(
                f"{port} answered the raw SYN with {main.kind}, not a reset: nothing to attribute",
                evidence,
            )
        if not refs:
            return warned(f"{port} answered with a RST but no other port answered, so there "
                          "is no TTL to compare it with", evidence)  # fmt: skip
        if main.ttl in refs.values():
            return passed(
                evidence,
                f"the RST on {port} has the server's TTL ({main.ttl}): the server itself "
                "refuses (no DoT service or a host firewall)",
            )
        evidence["injected"] = True
        ref_text = ", ".join(f"{t} on {p}" for p, t in refs.items())
        return failed(
            f"the RST on {port} has TTL {main.ttl} but the server's own packets arrive with "
            f"{ref_text}: a middlebox on the path injects resets",
            evidence,
        )
