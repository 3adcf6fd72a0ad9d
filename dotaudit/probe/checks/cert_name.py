"""cert.name: the certificate names the authentication domain name (SAN dNSName,
RFC 6125 §6.4), or for an IP target without a name, its address (SAN iPAddress)."""

from __future__ import annotations

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, failed, passed
from dotaudit.probe.checks._shared import presented
from dotaudit.x509 import matches_ip, matches_name, san_names


class CertName(Check):
    id = "cert.name"
    title = "Certificate matches the authentication domain name"
    rfc = "RFC 8310 §8.1; RFC 6125 §6"
    level = Level.MUST
    advice = (
        "Install a certificate whose subjectAltName lists the name clients use for this "
        "resolver (RFC 6125 §6), or probe with that name (--name)."
    )
    depends_on = ("reach.853",)
    budget = 8.0
    strict_only = True

    def run(self, ctx: CheckContext) -> Outcome:
        _, chain = presented(ctx)
        sans = san_names(chain[0])
        evidence = {
            "name": ctx.name,
            "address": ctx.address,
            "san_dns": list(sans.dns),
            "san_ip": list(sans.ips),
            "san_count": sans.total,
        }
        if ctx.name is not None:
            evidence["reference"] = f"DNS-ID {ctx.name}"
            if matches_name(sans, ctx.name):
                return passed(evidence)
            shown = ", ".join(sans.dns[:5]) or "no dNSName"
            return failed(f"the certificate is not for {ctx.name} (SAN: {shown})", evidence)
        evidence["reference"] = f"IP-ID {ctx.address}"
        if matches_ip(sans, ctx.address):
            return passed(evidence, "no --name given: matched the address (SAN iPAddress)")
        return failed(
            f"no --name given and the certificate does not list {ctx.address} as an iPAddress SAN",
            evidence,
        )
