"""cert.quality: key type and size, signature hash (SHA-1 fails) and intermediates the
server should send but does not."""

from __future__ import annotations

from typing import Any

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, failed, passed, warned
from dotaudit.probe.checks._shared import presented
from dotaudit.x509 import WEAK_HASHES, aia_issuer_urls, is_self_signed, key_info, signature_hash


class CertQuality(Check):
    id = "cert.quality"
    title = "Strong key and signature; intermediates sent"
    rfc = "RFC 9325 §4.2-4.3 (BCP 195); RFC 8446 §4.4.2"
    level = Level.SHOULD
    advice = (
        "Reissue the certificate with a strong key (RSA of 2048 bits or more, or ECDSA "
        "P-256) and a SHA-256 or better signature, and have the server send its "
        "intermediate certificates (RFC 9325 §4.2)."
    )
    depends_on = ("reach.853",)
    after = ("cert.chain",)
    budget = 8.0

    def run(self, ctx: CheckContext) -> Outcome:
        info, chain = presented(ctx)
        leaf = chain[0]
        key = key_info(leaf)
        hashes = [signature_hash(c) for c in chain if not is_self_signed(c)]
        evidence: dict[str, Any] = {
            "key_type": key.kind,
            "key_bits": key.bits,
            "signature_hashes": hashes,
            "sent_length": len(chain),
            "verified_length": len(info.verified_chain),
        }
        problems: list[str] = []
        if key.problem:
            problems.append(key.problem)
        weak = sorted({h for h in hashes if h in WEAK_HASHES})
        if weak:
            problems.append(f"signed with {', '.join(weak).upper()}")
        if problems:
            return failed("; ".join(problems), evidence)
        sent = set(info.chain)
        missing = [der for der in info.verified_chain[1:-1] if der not in sent]
        if missing:
            evidence["missing_intermediates"] = len(missing)
            return warned(
                f"the server omits {len(missing)} intermediate certificate(s); only clients "
                "that already hold them can validate",
                evidence,
            )
        urls = aia_issuer_urls(chain[-1])
        if not info.verified and len(chain) == 1 and urls and not is_self_signed(leaf):
            evidence["aia_ca_issuers"] = urls
            return warned(
                "the chain does not validate and the server sent only its leaf, whose AIA "
                "points to an issuer certificate: a missing intermediate",
                evidence,
            )
        return passed(evidence)
