"""``--nagios``: one target, one line, the monitoring-plugins exit codes.

    DOT OK|WARNING|CRITICAL|UNKNOWN - summary | handshake_ms=…;; first_query_ms=…;; …

Perfdata is numeric only (getdns_server_mon's text perfdata breaks graphing); a value
that was not measured is left out rather than written as text. Exit 0 OK, 1 WARNING,
2 CRITICAL, 3 UNKNOWN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dotaudit.probe.base import CheckStatus, Level
from dotaudit.probe.runner import TargetResult
from dotaudit.probe.verdict import NOT_TESTED

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
MAX_SUMMARY = 300


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Warn/critical levels; a metric at or beyond one raises the state."""

    cert_warn_days: float = 14.0
    cert_crit_days: float = 7.0
    handshake_warn_ms: float | None = None
    handshake_crit_ms: float | None = None
    query_warn_ms: float | None = None
    query_crit_ms: float | None = None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _metrics(result: TargetResult) -> dict[str, float | None]:
    def ev(check_id: str) -> dict[str, Any]:
        attempt = result.attempt(check_id)
        return attempt.evidence if attempt is not None else {}

    latency = ev("latency")
    return {
        "handshake_ms": _number((latency.get("handshake_ms") or {}).get("median")),
        "first_query_ms": _number(latency.get("first_query_ms"))
        or _number(ev("tls.resumption").get("first_query_ms")),
        "reused_ms": _number((latency.get("reused_query_ms") or {}).get("median"))
        or _number(ev("reuse").get("median_ms")),
        "cert_days": _number(ev("cert.expiry").get("days_left")),
        "keepalive_ms": _number(ev("keepalive").get("advertised_ms")),
    }


def _fmt(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _limit(value: float | None) -> str:
    return _fmt(value) if value is not None else ""


def _perfdata(values: dict[str, float | None], th: Thresholds) -> str:
    levels = {
        "handshake_ms": (th.handshake_warn_ms, th.handshake_crit_ms),
        "first_query_ms": (th.query_warn_ms, th.query_crit_ms),
        "cert_days": (th.cert_warn_days, th.cert_crit_days),
    }
    parts = []
    for key, value in values.items():
        if value is None:
            continue
        warn, crit = levels.get(key, (None, None))
        parts.append(f"{key}={_fmt(value)};{_limit(warn)};{_limit(crit)}")
    return " ".join(parts)


def _clean(text: str) -> str:
    # '|' starts perfdata and a newline ends the plugin's first line: keep both out.
    flat = "".join(c if c.isprintable() else " " for c in text).replace("|", "/")
    return flat[:MAX_SUMMARY]


def _evaluate(result: TargetResult, th: Thresholds, mode: str = "strict") -> tuple[int, str]:
    """(exit state, one-line summary) for a probed target."""
    if result.error:
        return UNKNOWN, f"cannot probe {result.target.target}: {result.error}"
    crit: list[str] = []
    warn: list[str] = []
    if mode == "strict" and result.verdict.strict == "refuse":
        crit.append(result.verdict.reasons[0] if result.verdict.reasons else "strict refuse")
    elif mode == "opportunistic" and result.verdict.opportunistic not in (
        "encrypted",
        NOT_TESTED,
    ):
        crit.append(f"opportunistic: {result.verdict.opportunistic}")
    for attempt in result.attempts:
        why = f"{attempt.id}: {attempt.error_reason or attempt.status.value}"
        if attempt.status is CheckStatus.FAIL:
            (crit if attempt.level is Level.MUST else warn).append(why)
        elif attempt.status in (CheckStatus.WARN, CheckStatus.ERROR):
            warn.append(why)
    values = _metrics(result)
    for key, (w, c) in {
        "handshake_ms": (th.handshake_warn_ms, th.handshake_crit_ms),
        "first_query_ms": (th.query_warn_ms, th.query_crit_ms),
    }.items():
        value = values[key]
        if value is not None and c is not None and value >= c:
            crit.append(f"{key} {_fmt(value)} >= {_fmt(c)}")
        elif value is not None and w is not None and value >= w:
            warn.append(f"{key} {_fmt(value)} >= {_fmt(w)}")
    days = values["cert_days"]
    if days is not None and days <= th.cert_crit_days:
        crit.append(f"certificate expires in {days:.1f} days")
    elif days is not None and days <= th.cert_warn_days:
        warn.append(f"certificate expires in {days:.1f} days")
    reach = result.attempt("reach.853")
    if reach is not None and reach.status is CheckStatus.ERROR:
        return UNKNOWN, f"reach.853: {reach.error_reason}"
    if crit:
        return CRITICAL, "; ".join(crit + warn)
    if warn:
        return WARNING, "; ".join(warn)
    return OK, f"{result.target.target}: strict {result.verdict.strict}, all checks pass"


def nagios_line(result: TargetResult, th: Thresholds, mode: str = "strict") -> tuple[int, str]:
    state, summary = _evaluate(result, th, mode)
    line = f"DOT {NAMES[state]} - {_clean(summary)}"
    perf = _perfdata(_metrics(result), th)
    return state, f"{line} | {perf}" if perf else line
