"""blocked-port: when 853 does not work, would clients fall back to plaintext 53, and
what is most likely blocking it?"""

from __future__ import annotations

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, failed, passed, warned

MECHANISM = {
    "filtered": "firewall DROP (SYNs vanish)",
    "icmp": "ICMP policy (an unreachable/admin-prohibited reply)",
    "refused": "active RST or no DoT service (a reset from the host itself looks the same)",
}


class BlockedPort(Check):
    id = "blocked-port"
    title = "Port 853 is not blocked while port 53 works"
    rfc = "RFC 8310 §5; RFC 7858 §3.1"
    level = Level.SHOULD
    after = ("reach.853", "reach.53", "rst-injection")
    budget = 1.0

    def run(self, ctx: CheckContext) -> Outcome:
        klass = ctx.evidence("reach.853").get("class")
        plain = ctx.evidence("reach.53")
        udp = bool(plain.get("udp53", {}).get("answered"))
        tcp = bool(plain.get("tcp53", {}).get("answered"))
        evidence = {"reach_853": klass, "udp53_answers": udp, "tcp53_answers": tcp}
        if klass == "open":
            return passed(evidence)
        mechanism = MECHANISM.get(str(klass), f"unclassified ({klass})")
        rst = ctx.evidence("rst-injection")
        if klass == "refused" and rst.get("injected"):
            mechanism = "active RST injected by a middlebox (TTL mismatch)"
        elif klass == "refused" and rst.get("method") == "raw-syn":
            mechanism = "no DoT service or a host firewall (the RST has the server's TTL)"
        evidence["mechanism"] = mechanism
        if udp or tcp:
            return failed(
                f"853 is {klass} while 53 answers: opportunistic clients fall back to "
                f"plaintext here; likely cause: {mechanism}",
                evidence,
            )
        return warned(f"853 is {klass} and 53 does not answer either; likely cause: "
                      f"{mechanism}", evidence)  # fmt: skip
