"""rst-injection: is a reset on 853 made by the server, or by a middlebox on the path?

As root, one raw SYN each to 853, 53 and 443 (scapy, in transport/raw.py) gives the TTL
and IP ID of whatever answers. The server's own replies (SYN-ACK or RST on 53/443)
share its path length, so a RST on 853 whose TTL differs came from elsewhere: a
middlebox injecting resets. Without root only connect() results exist, and the check
says so.
"""

from __future__ import annotations

from typing import Any

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, failed, passed, warned
from dotaudit.probe.transport import can_send_raw

REFERENCE_PORTS = (53, 443)


class RstInjection(Check):
    id = "rst-injection"
    title = "Resets on 853 come from the server, not the path"
    rfc = "RFC 8310 §5; RFC 7858 §3.1"
    level = Level.SHOULD
    after = ("reach.853",)
    budget = 10.0

    def run(self, ctx: CheckContext) -> Outcome:
        reach = ctx.evidence("reach.853").get("class")
        if not can_send_raw():
            basis: dict[str, Any] = {"method": "connect", "reach_853": reach}
            note = "raw SYN probe needs root; classified from connect() only"
            if reach == "refused":
                return warned(f"853 answered with a RST; {note}, so an injected reset "
                              "cannot be told from the server's own", basis)  # fmt: skip
            return passed(basis, note)
        if reach == "open":
            return passed({"method": "none", "reach_853": reach}, "853 accepts connections")
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
            return passed(evidence, f"853 answered the SYN with {main.kind}")
        if not refs:
            return warned("853 answered with a RST but no other port answered, so there is "
                          "no TTL to compare it with", evidence)  # fmt: skip
        if main.ttl in refs.values():
            return passed(
                evidence,
                f"the RST on 853 has the server's TTL ({main.ttl}): the server itself "
                "refuses (no DoT service or a host firewall)",
            )
        evidence["injected"] = True
        ref_text = ", ".join(f"{t} on {p}" for p, t in refs.items())
        return failed(
            f"the RST on 853 has TTL {main.ttl} but the server's own packets arrive with "
            f"{ref_text}: a middlebox on the path injects resets",
            evidence,
        )
