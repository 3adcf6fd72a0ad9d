"""reuse: K queries, one after the other, over one connection (RFC 7858 §3.4: servers
SHOULD NOT close a connection after each response), then a short look whether the
server closed it behind the last answer."""

from __future__ import annotations

from typing import Any

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, failed, passed, warned
from dotaudit.probe.checks import _dns
from dotaudit.probe.transport import Deadline, ProbeError

DEFAULT_QUERIES = 5
LOOK_S = 0.2
"""How long to watch for a close after the last answer."""


class Reuse(Check):
    id = "reuse"
    title = "The connection is reused for several queries"
    rfc = "RFC 7858 §3.4"
    level = Level.SHOULD
    advice = (
        "Keep DoT connections open for several queries (RFC 7858 §3.4): raise the "
        "server's idle timeout and its limit of queries per connection."
    )
    depends_on = ("reach.853",)
    after = ("pipelining",)
    budget = 10.0

    def run(self, ctx: CheckContext) -> Outcome:
        count = max(2, min(int(_dns.option(ctx, "reuse_queries", DEFAULT_QUERIES)), 50))
        conn = _dns.live(ctx)
        times: list[float] = []
        error: str | None = None
        for _ in range(count):
            try:
                _, _, ms = _dns.exchange(ctx, conn, ctx.make_query(pad=_dns.QUERY_BLOCK))
            except ProbeError as exc:
                error = str(exc)
                break
            times.append(ms)
        still_open = False
        if error is None:
            end, _ = conn.wait_closed(Deadline(min(LOOK_S, ctx.deadline.remaining())))
            still_open = end == "open"
        evidence: dict[str, Any] = {
            "queries": count,
            "answered": len(times),
            "query_ms": times,
            "median_ms": _dns.median(times),
            "open_after_last": still_open,
        }
        ctx.cache["reused_ms"] = times
        if not times:
            return failed(f"no query answered on the connection ({error})", evidence)
        if len(times) < count:
            return warned(f"the server closed after {len(times)} of {count} queries ({error})",
                          evidence)  # fmt: skip
        if not still_open:
            return warned("the server closed the connection right after the last answer",
                          evidence)  # fmt: skip
        return passed(evidence)
