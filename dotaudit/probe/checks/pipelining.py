"""pipelining: ten queries sent in one write are all answered, matched by message ID
(RFC 7858 §3.3: clients and servers MUST handle pipelining; responses may come out of
order). With ``--slow-qname`` the slow name goes first: a server that answers the
other nine before it answers out of order, as RFC 7766 §6.2.1.1 encourages.
"""

from __future__ import annotations

import secrets
from typing import Any

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, failed, passed
from dotaudit.probe.checks import _dns
from dotaudit.probe.transport import ProbeError

COUNT = 10


def _unique_ids(count: int) -> list[int]:
    ids: list[int] = []
    while len(ids) < count:
        candidate = secrets.randbelow(0x10000)
        if candidate not in ids:
            ids.append(candidate)
    return ids


class Pipelining(Check):
    id = "pipelining"
    title = "Pipelined queries are all answered (out of order when one is slow)"
    rfc = "RFC 7858 §3.3; RFC 7766 §6.2.1.1"
    level = Level.MUST
    advice = (
        "Let the DoT server work on several queries of one connection at once and answer "
        "each when ready (RFC 7766 §6.2.1.1), rather than one at a time or dropping some."
    )
    depends_on = ("reach.853",)
    after = ("padding.unsolicited",)
    budget = 10.0

    def run(self, ctx: CheckContext) -> Outcome:
        slow = _dns.option(ctx, "slow_qname", None)
        names = ([slow] if slow else []) + [ctx.config.qname] * (COUNT - (1 if slow else 0))
        queries = []
        for qid, name in zip(_unique_ids(COUNT), names, strict=True):
            query = ctx.make_query(name, pad=_dns.QUERY_BLOCK)
            query.id = qid
            queries.append(query)
        conn = _dns.live(ctx)
        conn.send_framed([q.to_wire() for q in queries], ctx.op())
        sent = {q.id: i for i, q in enumerate(queries)}
        order: list[int] = []
        deadline = ctx.op(max(ctx.config.timeout, 5.0) if slow else None)
        error: str | None = None
        while len(order) < COUNT:
            try:
                raw = conn.read_message(deadline)
            except ProbeError as exc:
                error = str(exc)
                break
            reply = _dns.parse(raw)
            index = sent.get(reply.id)
            if index is not None and index not in order and reply.flags & 0x8000:
                order.append(index)
        out_of_order = order != sorted(order)
        evidence: dict[str, Any] = {
            "sent": COUNT,
            "answered": len(order),
            "response_order": order,
            "out_of_order": out_of_order,
            "slow_qname": slow,
            "slow_answered_last": bool(slow) and bool(order) and order[-1] == 0,
        }
        if len(order) < COUNT:
            why = f" ({error})" if error else ""
            return failed(f"only {len(order)} of {COUNT} pipelined queries answered{why}",
                          evidence)  # fmt: skip
        if out_of_order:
            note = "responses came out of order (the server works on queries concurrently)"
        elif slow:
            note = (f"in order even with the slow name {slow} first: the server answers one "
                    "query at a time")  # fmt: skip
        else:
            note = "in order (no slow name given)"
        evidence["order_note"] = note
        return passed(evidence, note)
