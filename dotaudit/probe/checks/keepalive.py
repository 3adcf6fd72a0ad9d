"""keepalive: the EDNS TCP keepalive timeout the server advertises (RFC 7828 §3.3.2,
in units of 100 ms) and the idle timeout it really applies, measured by sending one
query with the option and then staying silent until the server closes, at most
``--max-idle-wait`` seconds (default 20), within the check's budget.

The idle wait runs on the connection tls.resumption left open when there is one, so
the measurement costs no extra handshake.
"""

from __future__ import annotations

from typing import Any

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, passed, warned
from dotaudit.probe.checks import _dns
from dotaudit.probe.transport import Deadline, TlsConnection

DEFAULT_MAX_IDLE_WAIT = 20.0
SLACK_S = 1.5
"""Waited past the advertised timeout before calling the close late."""


def _tolerance(advertised_s: float) -> float:
    # Servers check idle connections on a timer; allow a tenth or half a second.
    return max(0.5, advertised_s * 0.1)


def _connection(ctx: CheckContext) -> TlsConnection:
    resumed = ctx.cache.get("conn:resumed")
    if isinstance(resumed, TlsConnection) and resumed.is_open():
        return resumed
    return _dns.live(ctx)


def judge(advertised_s: float | None, end: str, waited: float, wait: float) -> tuple[str, str]:
    """(pass or warn, what was seen) for an advertised timeout and the idle close."""
    closed = end != "open"
    if advertised_s is None:
        seen = f"closed after {waited:.1f} s idle" if closed else f"open after {wait:.1f} s idle"
        return "warn", f"no edns-tcp-keepalive advertised ({seen})"
    if advertised_s == 0:
        return "warn", "advertised a timeout of 0: clients must send no more queries"
    if closed:
        gap = waited - advertised_s
        if gap < -_tolerance(advertised_s):
            return "warn", (
                f"advertised {advertised_s:.1f} s but closed after {waited:.1f} s idle: clients "
                "that trust the advertisement will find the connection gone"
            )
        return "pass", f"advertised {advertised_s:.1f} s, closed after {waited:.1f} s idle"
    if wait >= advertised_s + _tolerance(advertised_s):
        return "warn", f"advertised {advertised_s:.1f} s but still open after {wait:.1f} s idle"
    return "pass", (
        f"advertised {advertised_s:.1f} s; still open after {wait:.1f} s idle (the wait "
        "cannot reach the advertised timeout)"
    )


class Keepalive(Check):
    id = "keepalive"
    title = "EDNS TCP keepalive advertised, and honoured when idle"
    rfc = "RFC 7828 §3.3.2; RFC 7858 §3.4"
    level = Level.SHOULD
    depends_on = ("reach.853",)
    after = ("tls.resumption", "dns.answer")
    budget = 70.0
    """Only an upper bound: the wait itself is --max-idle-wait (default 20 s)."""

    def run(self, ctx: CheckContext) -> Outcome:
        conn = _connection(ctx)
        _, reply, ms = _dns.exchange(ctx, conn, _dns.keepalive_query(ctx))
        units = _dns.keepalive_units(reply)
        advertised_s = units / 10 if units is not None and units >= 0 else None
        limit = float(_dns.option(ctx, "max_idle_wait", DEFAULT_MAX_IDLE_WAIT))
        if advertised_s:
            limit = min(limit, advertised_s + max(SLACK_S, _tolerance(advertised_s)))
        wait = max(0.0, min(limit, ctx.deadline.remaining() - 0.5))
        end, waited = conn.wait_closed(Deadline(wait))
        evidence: dict[str, Any] = {
            "advertised": units is not None,
            "advertised_units": units,
            "advertised_ms": units * 100 if units is not None and units >= 0 else None,
            "measured_idle_close_ms": round(waited * 1000) if end != "open" else None,
            "idle_end": end,
            "waited_s": round(waited, 3),
            "max_wait_s": round(wait, 3),
            "query_ms": ms,
        }
        if units == -1:
            return warned("the edns-tcp-keepalive option has a length other than 2", evidence)
        status, text = judge(advertised_s, end, waited, wait)
        evidence["mismatch"] = status == "warn" and advertised_s is not None
        return warned(text, evidence) if status == "warn" else passed(evidence, text)
