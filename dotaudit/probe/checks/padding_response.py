"""padding.response: a query padded to 128-octet blocks gets a padded response
(RFC 7830 §4 MUST) whose length, without the 2-octet prefix, is a multiple of 468
(RFC 8467 §4.1 SHOULD); a query whose padding octets are not zero is still answered
(RFC 7830 §3: responders accept any padding value). Lengths are measured on the wire.
"""

from __future__ import annotations

from typing import Any

import dns.edns
import dns.message
import dns.rcode

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, failed, passed, warned
from dotaudit.probe.checks import _dns

NONZERO_OCTET = 0xA5


def _nonzero_padded_query(ctx: CheckContext) -> tuple[dns.message.Message, bytes]:
    """A query padded to 128 octets with 0xA5 instead of zeros."""
    query = ctx.make_query()
    base = len(query.to_wire()) + 4  # the option's own code and length
    fill = bytes([NONZERO_OCTET]) * ((-base) % _dns.QUERY_BLOCK)
    query.use_edns(0, payload=1232, options=[dns.edns.GenericOption(_dns.PADDING, fill)])
    return query, query.to_wire()


class PaddingResponse(Check):
    id = "padding.response"
    title = "Padded queries get responses padded to 468-octet blocks"
    rfc = "RFC 7830 §4; RFC 8467 §4.1"
    level = Level.MUST
    advice = (
        "Pad responses to 468-octet blocks when the query is padded (RFC 7830 §4, RFC "
        "8467 §4.1); in Unbound: pad-responses: yes, pad-responses-block-size: 468."
    )
    depends_on = ("reach.853",)
    after = ("dns.answer",)
    budget = 8.0

    def run(self, ctx: CheckContext) -> Outcome:
        conn = _dns.live(ctx)
        query = ctx.make_query(pad=_dns.QUERY_BLOCK)
        wire = query.to_wire()
        raw, reply, _ = _dns.exchange(ctx, conn, query, wire)
        padding = _dns.options(reply).get(_dns.PADDING)
        evidence: dict[str, Any] = {
            "query_len": len(wire),
            "query_block_ok": len(wire) % _dns.QUERY_BLOCK == 0,
            "response_len": len(raw),
            "padded": padding is not None,
            "padding_len": len(padding) if padding is not None else None,
            "block": _dns.RESPONSE_BLOCK,
            "multiple_of_468": len(raw) % _dns.RESPONSE_BLOCK == 0,
            "rcode": _dns.rcode(reply),
        }
        odd_query, odd_wire = _nonzero_padded_query(ctx)
        odd_raw, odd_reply, _ = _dns.exchange(ctx, _dns.live(ctx), odd_query, odd_wire)
        accepted = odd_reply.rcode() != dns.rcode.FORMERR
        evidence["nonzero_padding"] = {
            "query_len": len(odd_wire),
            "accepted": accepted,
            "rcode": _dns.rcode(odd_reply),
            "response_len": len(odd_raw),
            "padded": _dns.PADDING in _dns.options(odd_reply),
        }
        problems: list[str] = []
        if padding is None:
            problems.append(f"the response to a padded query is not padded ({len(raw)} octets)")
        if not accepted:
            problems.append("a query with non-zero padding octets was refused (FORMERR)")
        if problems:
            return failed("; ".join(problems), evidence)
        if not evidence["multiple_of_468"]:
            return warned(
                f"padded, but to {len(raw)} octets, not a multiple of {_dns.RESPONSE_BLOCK}",
                evidence,
            )
        return passed(evidence)
