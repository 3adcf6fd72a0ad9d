"""tls.resumption: the server resumes sessions, TLS 1.3 tickets or 1.2 session IDs
(RFC 7858 §3.4 SHOULD). The shared connection answers one query first, because TLS 1.3
tickets arrive after the handshake; the resumed connection stays open for later checks.
"""

from __future__ import annotations

from typing import Any

import dns.rcode

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, passed, warned


class TlsResumption(Check):
    id = "tls.resumption"
    title = "TLS session resumption supported"
    rfc = "RFC 7858 §3.4"
    level = Level.SHOULD
    advice = (
        "Enable TLS session tickets or a session cache on the DoT server (RFC 7858 §3.4), "
        "so that reconnecting clients save a full handshake."
    )
    depends_on = ("reach.853",)
    budget = 10.0

    def run(self, ctx: CheckContext) -> Outcome:
        info = ctx.handshake()
        conn = info.require()
        reply, query_ms = conn.query(ctx.make_query(), ctx.op())
        ctx.cache.setdefault("first_answer", (reply, query_ms))
        session = conn.sock.session
        evidence: dict[str, Any] = {
            "version": conn.version,
            "first_query_ms": query_ms,
            "first_rcode": dns.rcode.to_text(reply.rcode()),
            "ticket": bool(session is not None and session.has_ticket),
        }
        if session is None or info.context is None:
            return warned("the server gave no session to resume", evidence)
        again = ctx.adopt(
            ctx.net.tls_connect(ctx.address, ctx.port, info.context, ctx.sni, ctx.op(), session)
        )
        ctx.cache["conn:resumed"] = again
        evidence["reused"] = again.session_reused
        evidence["resumed_handshake_ms"] = again.timings.get("handshake_ms")
        evidence["full_handshake_ms"] = conn.timings.get("handshake_ms")
        if again.session_reused:
            return passed(evidence)
        return warned("the server did not resume the session", evidence)
