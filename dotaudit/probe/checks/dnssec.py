"""dnssec (online only): the resolver validates. A name with broken signatures must get
SERVFAIL (and an answer with CD set), a signed name must come back with AD set
(RFC 4035 §3.2). Needs the resolver to reach the internet and the test names to exist,
so it is skipped unless ``--online`` is given.
"""

from __future__ import annotations

from typing import Any

import dns.flags
import dns.rcode

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, failed, passed
from dotaudit.probe.checks import _dns

BROKEN = "dnssec-failed.org"
SIGNED = "isc.org"


class Dnssec(Check):
    id = "dnssec"
    title = "[online] DNSSEC validation"
    rfc = "RFC 4035 §3.2; RFC 8310 §9 (online check)"
    level = Level.SHOULD
    advice = (
        "Turn on DNSSEC validation in the resolver (RFC 4035 §3.2), so that clients get "
        "authentic answers."
    )
    depends_on = ("reach.853",)
    after = ("dns.answer",)
    budget = 15.0
    online_only = True

    def run(self, ctx: CheckContext) -> Outcome:
        conn = _dns.live(ctx)
        broken = ctx.make_query(BROKEN)
        broken.flags |= dns.flags.AD
        _, bad, _ = _dns.exchange(ctx, conn, broken)
        signed = ctx.make_query(SIGNED)
        signed.flags |= dns.flags.AD
        _, good, _ = _dns.exchange(ctx, conn, signed)
        evidence: dict[str, Any] = {
            "online_only": True,
            "broken": {"name": BROKEN, "rcode": _dns.rcode(bad)},
            "signed": {
                "name": SIGNED,
                "rcode": _dns.rcode(good),
                "ad": bool(good.flags & dns.flags.AD),
            },
        }
        if bad.rcode() != dns.rcode.SERVFAIL:
            return failed(f"{BROKEN} answered {_dns.rcode(bad)}, not SERVFAIL: no validation",
                          evidence)  # fmt: skip
        if not good.flags & dns.flags.AD:
            return failed(f"{SIGNED} came back without the AD bit", evidence)
        return passed(evidence)
