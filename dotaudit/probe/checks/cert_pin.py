"""cert.pin: an SPKI pin matches (RFC 7858 §4.2). The seen pins are always reported so
that a user can pin the resolver; without --pin there is nothing to match (not applicable)."""

from __future__ import annotations

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, failed, not_applicable, passed
from dotaudit.probe.checks._shared import presented
from dotaudit.x509 import spki_pin


class CertPin(Check):
    id = "cert.pin"
    title = "SPKI pin matches"
    rfc = "RFC 7858 §4.2; RFC 8310 §6.4"
    level = Level.MUST
    advice = (
        "Update the pins clients use to the server's current key, and keep a backup pin "
        "(RFC 7858 §4.2)."
    )
    depends_on = ("reach.853",)
    budget = 8.0
    strict_only = True

    def run(self, ctx: CheckContext) -> Outcome:
        _, chain = presented(ctx)
        seen = [spki_pin(cert) for cert in chain]
        evidence = {"leaf_pin": seen[0], "chain_pins": seen, "pins_given": list(ctx.config.pins)}
        if not ctx.config.pins:
            return not_applicable(
                f"no --pin given; to pin this server use --pin {seen[0]}", evidence
            )
        matched = [pin for pin in ctx.config.pins if pin in seen]
        evidence["matched"] = matched
        if matched:
            return passed(evidence)
        return failed(
            f"none of the {len(ctx.config.pins)} pin(s) matches; the server's key pin is {seen[0]}",
            evidence,
        )
