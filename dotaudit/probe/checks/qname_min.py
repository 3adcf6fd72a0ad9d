"""qname-min (online only): the resolver minimises the names it sends upstream (RFC 9156),
told by internet.nl's test name, whose TXT answer starts with "HOORAY" when the query
reached its servers minimised. Skipped unless ``--online`` is given.
"""

from __future__ import annotations

from typing import Any

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, failed, passed, warned
from dotaudit.probe.checks import _dns

TEST_NAME = "qnamemintest.internet.nl"


class QnameMin(Check):
    id = "qname-min"
    title = "[online] QNAME minimisation"
    rfc = "RFC 9156 §2 (online check)"
    level = Level.MAY
    advice = (
        "Turn on QNAME minimisation in the resolver (RFC 9156), so that authoritative "
        "servers see only the labels they need."
    )
    depends_on = ("reach.853",)
    after = ("dns.answer",)
    budget = 15.0
    online_only = True

    def run(self, ctx: CheckContext) -> Outcome:
        _, reply, _ = _dns.exchange(ctx, _dns.live(ctx), ctx.make_query(TEST_NAME, "TXT"))
        texts = [a.split(" ", 1)[1] for a in _dns.answers(reply) if a.startswith("TXT ")]
        evidence: dict[str, Any] = {"online_only": True, "name": TEST_NAME,
                                    "rcode": _dns.rcode(reply), "txt": texts}  # fmt: skip
        if any(t.lstrip('"').startswith("HOORAY") for t in texts):
            return passed(evidence)
        if any(t.lstrip('"').startswith("NO") for t in texts):
            return failed("the resolver sends full names upstream", evidence)
        return warned("no QNAME minimisation verdict in the answer", evidence)
