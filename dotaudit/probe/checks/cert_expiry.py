"""cert.expiry: days until the leaf expires; warn at 14 days, fail at 7 or when expired
or not yet valid (the thresholds getdns_server_mon uses)."""

from __future__ import annotations

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, failed, passed, warned
from dotaudit.probe.checks._shared import presented
from dotaudit.x509 import days_left

WARN_DAYS = 14
FAIL_DAYS = 7


def judge_days(days: float) -> tuple[str, str | None]:
    """("pass"|"warn"|"fail", reason) for ``days`` left."""
    if days < 0:
        return "fail", f"expired {-days:.1f} days ago"
    if days <= FAIL_DAYS:
        return "fail", f"expires in {days:.1f} days (at or below {FAIL_DAYS})"
    if days <= WARN_DAYS:
        return "warn", f"expires in {days:.1f} days (at or below {WARN_DAYS})"
    return "pass", None


class CertExpiry(Check):
    id = "cert.expiry"
    title = "Certificate is valid for at least 14 more days"
    rfc = "RFC 5280 §4.1.2.5"
    level = Level.MUST
    advice = (
        "Renew the certificate before it expires, and automate renewal (ACME, RFC 8555) "
        "so that strict clients are never cut off."
    )
    depends_on = ("reach.853",)
    budget = 8.0
    strict_only = True

    def run(self, ctx: CheckContext) -> Outcome:
        _, chain = presented(ctx)
        leaf = chain[0]
        now = ctx.now()
        days = days_left(leaf, now)
        evidence = {
            "not_before": leaf.not_valid_before_utc.isoformat(),
            "not_after": leaf.not_valid_after_utc.isoformat(),
            "days_left": round(days, 2),
            "warn_days": WARN_DAYS,
            "fail_days": FAIL_DAYS,
        }
        if leaf.not_valid_before_utc > now:
            return failed("the certificate is not valid yet", evidence)
        status, reason = judge_days(days)
        if status == "fail":
            return failed(str(reason), evidence)
        if status == "warn":
            return warned(str(reason), evidence)
        return passed(evidence)
