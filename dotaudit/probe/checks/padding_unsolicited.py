"""padding.unsolicited: no padding the client did not ask for. A query without EDNS(0)
must get no padding (RFC 7830 §4 MUST NOT); one with EDNS(0) but no padding option
should get none either (RFC 7830 §4 leaves it a MAY: reported as a warning).
"""

from __future__ import annotations

from typing import Any

import dns.message
import dns.name
import dns.rdatatype

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, failed, passed, warned
from dotaudit.probe.checks import _dns


class PaddingUnsolicited(Check):
    id = "padding.unsolicited"
    title = "Responses are not padded unless the query asked for it"
    rfc = "RFC 7830 §4"
    level = Level.MUST
    advice = "Pad responses only when the query carried the padding option (RFC 7830 §4)."
    depends_on = ("reach.853",)
    after = ("padding.response",)
    budget = 8.0

    def run(self, ctx: CheckContext) -> Outcome:
        evidence: dict[str, Any] = {}
        qname = dns.name.from_text(ctx.config.qname)
        plain = dns.message.make_query(qname, dns.rdatatype.A, use_edns=False)
        raw, reply, _ = _dns.exchange(ctx, _dns.live(ctx), plain)
        evidence["no_edns"] = {
            "response_len": len(raw),
            "opt": reply.edns >= 0,
            "padded": _dns.PADDING in _dns.options(reply),
        }
        edns = ctx.make_query()
        raw, reply, _ = _dns.exchange(ctx, _dns.live(ctx), edns)
        evidence["edns_no_padding"] = {
            "response_len": len(raw),
            "padded": _dns.PADDING in _dns.options(reply),
        }
        if evidence["no_edns"]["padded"] or evidence["no_edns"]["opt"]:
            return failed("a query without EDNS(0) got an OPT record or padding back", evidence)
        if evidence["edns_no_padding"]["padded"]:
            return warned(
                "pads responses to queries that did not ask for padding (allowed, RFC 7830 §4 "
                "MAY, but the padding option then tells nothing about the client)",
                evidence,
            )
        return passed(evidence)
