"""latency: where the time to a DoT answer goes. TCP connect, TLS handshake, first query
and reused-connection query (medians of what the audit measured plus N extra queries
on the open connection), the round trips before the first answer, and the same for
UDP 53 when it answers. Informational: it passes whenever it could measure.
"""

from __future__ import annotations

from typing import Any

from dotaudit.probe.base import Check, CheckContext, Handshake, Level, Outcome, passed
from dotaudit.probe.checks import _dns
from dotaudit.probe.transport import ProbeError, TlsConnection

DEFAULT_SAMPLES = 5
TLS_ROUND_TRIPS = {"TLSv1.3": 1, "TLSv1.2": 2}
"""Full handshakes without 0-RTT or False Start."""


def _samples(values: list[float]) -> dict[str, Any]:
    return {"median": _dns.median(values), "n": len(values), "samples": values[:20]}


def _connections(ctx: CheckContext) -> list[TlsConnection]:
    found: list[TlsConnection] = []
    info = ctx.cache.get("handshake")
    if isinstance(info, Handshake) and info.connection is not None:
        found.append(info.connection)
    dns_conn = ctx.cache.get("conn:dns")
    if isinstance(dns_conn, TlsConnection) and dns_conn not in found:
        found.append(dns_conn)
    return found


class Latency(Check):
    id = "latency"
    title = "Latency: connect, handshake, first and reused query, UDP 53"
    rfc = "RFC 7858 §3.4; RFC 7766 §6.2"
    level = Level.MAY
    advice = (
        "Look at what is slow: the path, the resolver's load, or the missing session "
        "resumption (RFC 7858 §3.4)."
    )
    depends_on = ("reach.853",)
    after = ("reach.53", "tls.resumption", "dns.answer", "reuse")
    budget = 12.0

    def run(self, ctx: CheckContext) -> Outcome:
        count = max(1, min(int(_dns.option(ctx, "latency_samples", DEFAULT_SAMPLES)), 50))
        conns = _connections(ctx)
        connect = [c.timings["connect_ms"] for c in conns if c.timings.get("connect_ms")]
        reach = ctx.evidence("reach.853").get("connect_ms")
        if isinstance(reach, float | int):
            connect.append(float(reach))
        handshake = [c.timings["handshake_ms"] for c in conns if c.timings.get("handshake_ms")]
        resumed = ctx.cache.get("conn:resumed")
        resumed_ms = (
            resumed.timings.get("handshake_ms") if isinstance(resumed, TlsConnection) else None
        )
        first = ctx.evidence("tls.resumption").get("first_query_ms") or ctx.cache.get(
            "dns_answer_ms"
        )
        reused = list(ctx.cache.get("reused_ms") or [])
        conn = _dns.live(ctx)
        for _ in range(count):
            _, _, ms = _dns.exchange(ctx, conn, ctx.make_query(pad=_dns.QUERY_BLOCK))
            reused.append(ms)
        version = conn.version
        tls_rtt = TLS_ROUND_TRIPS.get(version or "", 2)
        evidence: dict[str, Any] = {
            "connect_ms": _samples([float(v) for v in connect if v is not None]),
            "handshake_ms": _samples([float(v) for v in handshake if v is not None]),
            "resumed_handshake_ms": resumed_ms,
            "first_query_ms": first,
            "reused_query_ms": _samples(reused),
            "tls_version": version,
            "round_trips": {
                "dot_first_answer": 1 + tls_rtt + 1,
                "dot_reused": 1,
                "udp53": 1,
                "note": f"TCP 1 + TLS {tls_rtt} ({version}) + query 1 on a new connection",
            },
        }
        medians = [evidence["connect_ms"]["median"], evidence["handshake_ms"]["median"], first]
        if all(isinstance(v, float | int) for v in medians):
            evidence["time_to_first_answer_ms"] = round(sum(float(v) for v in medians), 3)
        evidence["udp53"] = self._udp(ctx, count)
        return passed(evidence)

    def _udp(self, ctx: CheckContext, count: int) -> dict[str, Any]:
        udp = ctx.evidence("reach.53").get("udp53", {})
        if "reach.53" in ctx.results and not udp.get("answered"):
            return {"reachable": False, "reason": "UDP 53 did not answer in reach.53"}
        port = int(_dns.option(ctx, "plain_port", 53))
        times: list[float] = []
        for _ in range(count):
            try:
                _, ms = ctx.net.udp_dns(ctx.address, port, ctx.make_query(), ctx.op())
            except ProbeError as exc:
                return {"reachable": bool(times), "error": str(exc), **_samples(times)}
            times.append(ms)
        return {"reachable": True, **_samples(times)}
