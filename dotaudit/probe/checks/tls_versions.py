"""tls.versions: which TLS versions the server accepts, each tried on its own.

TLS 1.0 and 1.1 are first offered together (a server that takes either picks it), so a
modern server costs one connection for both; only if one is accepted is 1.0 tried
alone. TLS 1.3 comes from the shared handshake; 1.2 is tried alone when that
handshake got 1.3. Also reports the negotiated cipher and whether ALPN "dot" is echoed.
"""

from __future__ import annotations

from typing import Any

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, failed, passed, warned
from dotaudit.probe.tls_context import DOT_ALPN, client_context
from dotaudit.probe.transport import ProbeError

REFUSALS = ("alert", "closed", "reset", "protocol")


class TlsVersions(Check):
    id = "tls.versions"
    title = "Only TLS 1.2 and 1.3 accepted; TLS 1.3 available"
    rfc = "RFC 7858 §8 (BCP 195: RFC 9325 §3.1.1, RFC 8996)"
    level = Level.MUST
    advice = (
        "Disable TLS 1.0 and 1.1 (RFC 8996) and offer TLS 1.3 alongside 1.2 (RFC 9325 "
        "§3.1.1) in the DoT server's TLS settings."
    )
    depends_on = ("reach.853",)
    budget = 16.0

    def _try(self, ctx: CheckContext, low: str, high: str) -> tuple[str | None, str | None]:
        """(negotiated version, None) or (None, why it was refused)."""
        context = client_context(verify=False, min_version=low, max_version=high)
        try:
            conn = ctx.net.tls_connect(ctx.address, ctx.port, context, ctx.sni, ctx.op())
        except ProbeError as exc:
            if exc.kind in REFUSALS:
                return None, str(exc)
            raise
        version = conn.version
        conn.close()
        return version, None

    def run(self, ctx: CheckContext) -> Outcome:
        conn = ctx.tls()
        best = conn.version
        accepted: dict[str, Any] = {v: None for v in ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")}
        if best in accepted:
            accepted[best] = True
        if best == "TLSv1.3":
            version, why = self._try(ctx, "TLSv1.2", "TLSv1.2")
            accepted["TLSv1.2"] = version == "TLSv1.2"
        else:
            accepted["TLSv1.3"] = False  # the shared handshake offered 1.3 and got less
        legacy, why = self._try(ctx, "TLSv1", "TLSv1.1")
        if legacy is None:
            accepted["TLSv1"] = accepted["TLSv1.1"] = False
        else:
            accepted[legacy] = True
            if legacy == "TLSv1.1":
                alone, _ = self._try(ctx, "TLSv1", "TLSv1")
                accepted["TLSv1"] = alone == "TLSv1"
            else:
                accepted["TLSv1.1"] = False  # offered with 1.0 and not chosen
        evidence: dict[str, Any] = {
            "accepted": accepted,
            "negotiated": best,
            "cipher": conn.cipher,
            "alpn": conn.alpn,
            "alpn_dot_echoed": conn.alpn == DOT_ALPN,
            "legacy_refusal": why,
        }
        old = [v for v in ("TLSv1", "TLSv1.1") if accepted[v]]
        if old:
            return failed(f"accepts {' and '.join(old)}, deprecated by RFC 8996", evidence)
        if not accepted["TLSv1.3"]:
            return warned("TLS 1.3 is not offered (best is " + str(best) + ")", evidence)
        return passed(evidence)
