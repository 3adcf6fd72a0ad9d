"""reach.853: does TCP 853 accept connections, and if not, how does it say no?

The class comes from how connect() ends: open, refused (a RST), filtered (no answer to
the SYN within the timeout) or icmp (EHOSTUNREACH/ENETUNREACH/EACCES from an ICMP
unreachable, which is how Linux reports host- and admin-prohibited).
"""

from __future__ import annotations

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, errored, failed, passed

EXPLAIN = {
    "refused": "the server or a middlebox answered the SYN with a RST",
    "filtered": "nothing answered the SYN: a firewall drops it or the host is down",
    "icmp": "an ICMP unreachable came back: a router or firewall rejects by policy",
}


class Reach853(Check):
    id = "reach.853"
    title = "The DoT port accepts TCP connections"
    rfc = "RFC 7858 §3.1"
    level = Level.MUST
    advice = (
        "Start the DoT service on this address and port, or open the port on every "
        "firewall between the clients and the resolver (RFC 7858 §3.1)."
    )
    budget = 5.0

    def run(self, ctx: CheckContext) -> Outcome:
        result = ctx.net.tcp_connect(ctx.address, ctx.port, ctx.op())
        evidence = result.to_dict()
        evidence["port"] = ctx.port
        if result.klass == "open":
            return passed(evidence)
        if result.klass == "error":
            return errored(f"connect failed in an unclassified way: {result.reason}", evidence)
        return failed(f"{result.klass}: {EXPLAIN[result.klass]}", evidence)
