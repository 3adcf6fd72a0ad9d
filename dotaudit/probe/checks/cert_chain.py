"""cert.chain: the certificate chain validates to a trusted root (RFC 5280 path
validation by OpenSSL, against --ca or the system store), as a strict client requires."""

from __future__ import annotations

from typing import Any

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, failed, passed
from dotaudit.probe.checks._shared import presented
from dotaudit.x509 import describe, is_self_signed, issuer_text


class CertChain(Check):
    id = "cert.chain"
    title = "Certificate chain validates to a trusted CA"
    rfc = "RFC 8310 §8.1; RFC 5280 §6"
    level = Level.MUST
    advice = (
        "Serve the whole certificate chain up to a CA the clients trust, and renew an "
        "expired certificate (RFC 8310 §8.1); for a private CA, give it with --ca."
    )
    depends_on = ("reach.853",)
    budget = 8.0
    strict_only = True

    def run(self, ctx: CheckContext) -> Outcome:
        info, chain = presented(ctx)
        leaf = chain[0]
        evidence: dict[str, Any] = {
            "trust_store": ctx.config.ca_file or "system",
            "sent": [describe(c) for c in chain],
            "verified_length": len(info.verified_chain),
        }
        if info.verified:
            return passed(evidence)
        evidence["openssl"] = info.verify_error
        if is_self_signed(leaf):
            why = "the certificate is self-signed"
        elif "expired" in (info.verify_error or ""):
            why = "the certificate has expired"
        elif "issuer" in (info.verify_error or ""):
            why = f"its issuer {issuer_text(chain[-1])!r} is not a trusted CA" + (
                " and the server sent no intermediate" if len(chain) == 1 else ""
            )
        else:
            why = "OpenSSL rejected the chain"
        return failed(f"{why} ({info.verify_error})", evidence)
