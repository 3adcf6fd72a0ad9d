"""What the DoH and DoQ checks share: one exchange made strictly first (chain verified
against ``--ca`` or the system store), again without verification if that fails, and
the DoT certificate checks (cert.name, cert.expiry, SHA-1) applied to what was presented."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dotaudit.probe.base import CheckContext
from dotaudit.probe.checks._dns import PADDING, RESPONSE_BLOCK, options, parse, rcode
from dotaudit.probe.checks.cert_expiry import judge_days
from dotaudit.probe.transport import ProbeError, SecureExchange
from dotaudit.x509 import (
    BadCertificate,
    days_left,
    load_certificate,
    matches_ip,
    matches_name,
    san_names,
    signature_hash,
    spki_pin,
)

REFUSED_KINDS = ("verify", "alert", "closed", "protocol")


def strict_then_loose(
    run: Callable[[bool], SecureExchange], retry_on: tuple[str, ...] = REFUSED_KINDS
) -> tuple[SecureExchange, str | None]:
    """(the exchange, why strict verification failed or None). Only failures of a kind
    in ``retry_on`` earn the unverified second try: aioquic reports a refused chain as a
    handshake alert, while a DoH client sees the verification error itself."""
    try:
        return run(True), None
    except ProbeError as exc:
        if exc.kind not in retry_on:
            raise
        why = str(exc)
    return run(False), why


def certificate(ctx: CheckContext, chain: list[bytes], verify_error: str | None,
                evidence: dict[str, Any]) -> list[str]:  # fmt: skip
    """Fill ``evidence["certificate"]``; return the problems a strict client would have."""
    problems: list[str] = []
    if verify_error:
        problems.append(f"chain: {verify_error}")
    if not chain:
        evidence["certificate"] = {"present": False}
        return [*problems, "no certificate seen"]
    try:
        leaf = load_certificate(chain[0])
    except BadCertificate as exc:
        evidence["certificate"] = {"present": True, "error": str(exc)}
        return [*problems, f"unreadable certificate ({exc})"]
    sans = san_names(leaf)
    name_ok = matches_name(sans, ctx.name) if ctx.name else matches_ip(sans, ctx.address)
    days = days_left(leaf, ctx.now())
    expiry, expiry_reason = judge_days(days)
    evidence["certificate"] = {
        "present": True,
        "chain_verified": verify_error is None,
        "name_matches": name_ok,
        "days_left": round(days, 1),
        "expiry": expiry,
        "spki_pin": spki_pin(leaf),
        "signature_hash": signature_hash(leaf),
    }
    if not name_ok:
        problems.append(f"the certificate is not for {ctx.name or ctx.address}")
    if expiry == "fail":
        problems.append(f"certificate {expiry_reason}")
    if signature_hash(leaf) == "sha1":
        problems.append("the certificate is signed with SHA-1")
    return problems


def padding_evidence(wire: bytes) -> dict[str, Any]:
    reply = parse(wire)
    return {
        "rcode": rcode(reply),
        "message_id": reply.id,
        "response_len": len(wire),
        "padded": PADDING in options(reply),
        "multiple_of_468": len(wire) % RESPONSE_BLOCK == 0,
    }
