"""blocked-port: when the DoT port does not work, would clients fall back to plaintext 53,
and what is most likely blocking it? Concluded only from what reach.853 and reach.53
measured."""

from __future__ import annotations

from dotaudit.probe.base import (
    Check,
    CheckContext,
    CheckStatus,
    Level,
    Outcome,
    failed,
    passed,
    skipped,
    warned,
)

MEASURED = (CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL, CheckStatus.NOT_APPLICABLE)

MECHANISM = {
    "filtered": "firewall DROP (SYNs vanish)",
    "icmp": "ICMP policy (an unreachable/admin-prohibited reply)",
    "refused": "active RST or no DoT service (a reset from the host itself looks the same)",
}


class BlockedPort(Check):
    id = "blocked-port"
    title = "The DoT port is not blocked while port 53 works"
    rfc = "RFC 8310 §5; RFC 7858 §3.1"
    level = Level.SHOULD
    advice = (
        "Open the DoT port on the path (RFC 7858 §3.1), and configure clients in strict "
        "mode (RFC 8310 §5) so that a blocked port makes them fail closed instead of "
        "falling back to port 53."
    )
    after = ("reach.853", "reach.53", "rst-injection")
    budget = 1.0

    def run(self, ctx: CheckContext) -> Outcome:
        klass = ctx.evidence("reach.853").get("class")
        if ctx.status("reach.853") not in MEASURED or klass is None:
            return skipped(f"reach.853 did not measure port {ctx.port}")
        if klass != "open" and ctx.status("reach.53") not in MEASURED:
            return skipped("reach.53 did not measure port 53: whether clients fall back is unknown")
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
                f"{ctx.port} is {klass} while 53 answers: opportunistic clients fall back to "
                f"plaintext here; likely cause: {mechanism}",
                evidence,
            )
        return warned(f"{ctx.port} is {klass} and 53 does not answer either; likely cause: "
                      f"{mechanism}", evidence)  # fmt: skip
