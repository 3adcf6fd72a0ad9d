"""keepalive: the EDNS TCP keepalive timeout the server advertises (RFC 7828 §3.3.2,
in units of 100 ms) and, when asked, the idle timeout it really applies, measured by
sending one query with the option and then staying silent until the server closes, at
most ``--max-idle-wait`` seconds.

The default probe does not wait: a server's idle timeout is often minutes (Unbound
advertises 120 s), and the wait would be most of a probe's time. The result says what was
and was not waited for, and the ``--max-idle-wait`` that would measure the close.

The idle wait runs on the connection tls.resumption left open when there is one, so
the measurement costs no extra handshake.
"""

from __future__ import annotations

import math
from typing import Any

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, ProbeConfig, passed, warned
from dotaudit.probe.checks import _dns
from dotaudit.probe.transport import Deadline, TlsConnection

DEFAULT_MAX_IDLE_WAIT = 0.0
"""Seconds the default probe waits for the idle close: none (opt in with --max-idle-wait)."""
SLACK_S = 1.5
"""Waited past the advertised timeout before calling the close late."""
BASE_BUDGET = 10.0
"""The check's time without the idle wait: one query, and the margin around the wait."""


def _tolerance(advertised_s: float) -> float:
    # Servers check idle connections on a timer; allow a tenth or half a second.
    return max(0.5, advertised_s * 0.1)


def wait_needed(advertised_s: float) -> int:
    """The --max-idle-wait that lets the check see a close at the advertised timeout."""
    return math.ceil(advertised_s + max(SLACK_S, _tolerance(advertised_s)))


def _connection(ctx: CheckContext) -> TlsConnection:
    resumed = ctx.cache.get("conn:resumed")
    if isinstance(resumed, TlsConnection) and resumed.is_open():
        return resumed
    return _dns.live(ctx)


def _measure_hint(advertised_s: float | None) -> str:
    if advertised_s:
        return f"use --max-idle-wait {wait_needed(advertised_s)} to measure"
    return "use --max-idle-wait S to measure"


def judge(advertised_s: float | None, end: str, waited: float, wait: float) -> tuple[str, str]:
    """(pass or warn, what was seen) for an advertised timeout and the idle close.

    ``wait`` is how long the check was allowed to wait (0: the close was not measured),
    ``waited`` how long it did, ``end`` how the wait ended ("open" when it ran out).
    """
    closed = end != "open"
    if advertised_s is None:
        if wait <= 0:
            return "warn", (
                f"no edns-tcp-keepalive advertised; idle close not measured ({_measure_hint(None)})"
            )
        seen = f"closed after {waited:.1f} s idle" if closed else f"open after {wait:.1f} s idle"
        return "warn", f"no edns-tcp-keepalive advertised ({seen})"
    if advertised_s == 0:
        return "warn", "advertised a timeout of 0: clients must send no more queries"
    if wait <= 0:
        hint = _measure_hint(advertised_s)
        return "pass", f"advertised {advertised_s:g} s; idle close not measured ({hint})"
    if closed:
        gap = waited - advertised_s
        if gap < -_tolerance(advertised_s):
            return "warn", (
                f"advertised {advertised_s:g} s but closed after {waited:.1f} s idle: clients "
                "that trust the advertisement will find the connection gone"
            )
        return "pass", f"advertised {advertised_s:g} s, closed after {waited:.1f} s idle"
    if wait >= advertised_s + _tolerance(advertised_s):
        return "warn", f"advertised {advertised_s:g} s but still open after {wait:.1f} s idle"
    return "pass", (
        f"advertised {advertised_s:g} s; still open after {wait:.1f} s idle, so the idle close "
        f"was not reached ({_measure_hint(advertised_s)})"
    )


class Keepalive(Check):
    id = "keepalive"
    title = "EDNS TCP keepalive advertised, and honoured when idle"
    rfc = "RFC 7828 §3.3.2; RFC 7858 §3.4"
    level = Level.SHOULD
    advice = (
        "Advertise an EDNS TCP keepalive timeout (RFC 7828) that matches the idle "
        "timeout the server really applies, so that clients reuse connections instead of "
        "finding them closed."
    )
    depends_on = ("reach.853",)
    after = ("tls.resumption", "dns.answer")
    budget = BASE_BUDGET
    """Without the idle wait, which adds --max-idle-wait (:meth:`extra_wait`)."""

    def extra_wait(self, config: ProbeConfig) -> float:
        return float(config.options.max_idle_wait or 0.0)

    def run(self, ctx: CheckContext) -> Outcome:
        conn = _connection(ctx)
        _, reply, ms = _dns.exchange(ctx, conn, _dns.keepalive_query(ctx))
        units = _dns.keepalive_units(reply)
        advertised_s = units / 10 if units is not None and units >= 0 else None
        limit = float(_dns.option(ctx, "max_idle_wait", DEFAULT_MAX_IDLE_WAIT))
        if advertised_s:
            limit = min(limit, advertised_s + max(SLACK_S, _tolerance(advertised_s)))
        wait = max(0.0, min(limit, ctx.deadline.remaining() - 0.5))
        end, waited = conn.wait_closed(Deadline(wait)) if wait > 0 else ("open", 0.0)
        evidence: dict[str, Any] = {
            "advertised": units is not None,
            "advertised_units": units,
            "advertised_ms": units * 100 if units is not None and units >= 0 else None,
            "idle_close": "not measured" if wait <= 0 else "measured" if end != "open"
            else "not reached",
            "measured_idle_close_ms": round(waited * 1000) if end != "open" else None,
            "idle_end": end if wait > 0 else None,
            "waited_s": round(waited, 3),
            "max_wait_s": round(wait, 3),
            "wait_needed_s": wait_needed(advertised_s) if advertised_s else None,
            "query_ms": ms,
        }  # fmt: skip
        if units == -1:
            return warned("the edns-tcp-keepalive option has a length other than 2", evidence)
        status, text = judge(advertised_s, end, waited, wait)
        evidence["mismatch"] = status == "warn" and advertised_s is not None and wait > 0
        return warned(text, evidence) if status == "warn" else passed(evidence, text)
