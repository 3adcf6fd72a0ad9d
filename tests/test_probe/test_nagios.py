"""The Nagios line: state, text and performance data.

Oracle: the monitoring-plugins output format (``STATE - text | label=value;warn;crit``)
and exit codes 0-3.
"""

from __future__ import annotations

import re

import pytest

from dotaudit.probe.base import CheckAttempt, CheckStatus, Level
from dotaudit.probe.nagios import CRITICAL, OK, UNKNOWN, WARNING, Thresholds, nagios_line
from dotaudit.probe.runner import TargetResult
from dotaudit.probe.target import parse_target
from dotaudit.probe.verdict import Verdict

PERF = re.compile(r"^[a-z_]+=-?\d+(\.\d+)?;[\d.]*;[\d.]*$")


def attempt(
    check_id: str, status: str, level: Level = Level.MUST, **evidence: object
) -> CheckAttempt:
    return CheckAttempt(check_id, CheckStatus(status), level, "RFC", dict(evidence), None)


def result(
    *attempts: CheckAttempt, strict: str = "accept", error: str | None = None
) -> TargetResult:
    return TargetResult(parse_target("dns.test@192.0.2.1"), "dns.test", list(attempts),
                        Verdict(strict, "encrypted", ("why",)), error=error)  # fmt: skip


def good(days: float = 200.0) -> list[CheckAttempt]:
    return [
        attempt("reach.853", "pass", **{"class": "open"}),
        attempt("cert.expiry", "pass", days_left=days),
        attempt("latency", "pass", Level.MAY, handshake_ms={"median": 12.5},
                first_query_ms=3.25, reused_query_ms={"median": 0.5}),
        attempt("keepalive", "pass", Level.SHOULD, advertised_ms=120000),
    ]  # fmt: skip


def test_nagios_ok_line_has_numeric_perfdata_only() -> None:
    state, line = nagios_line(result(*good()), Thresholds())
    assert state == OK
    head, perf = line.split(" | ")
    assert head.startswith("DOT OK - ")
    fields = perf.split()
    assert [f.split("=")[0] for f in fields] == [
        "handshake_ms", "first_query_ms", "reused_ms", "cert_days", "keepalive_ms"]  # fmt: skip
    assert all(PERF.match(f) for f in fields), fields
    assert "cert_days=200;14;7" in fields


@pytest.mark.parametrize(
    ("days", "thresholds", "state"),
    [
        (10.0, Thresholds(), WARNING),
        (5.0, Thresholds(), CRITICAL),
        (200.0, Thresholds(handshake_warn_ms=10), WARNING),
        (200.0, Thresholds(handshake_warn_ms=5, handshake_crit_ms=12), CRITICAL),
        (200.0, Thresholds(query_crit_ms=3), CRITICAL),
        # "a metric at or beyond one raises the state" (nagios.Thresholds), both sides:
        (14.0, Thresholds(), WARNING),
        (14.001, Thresholds(), OK),
        (7.0, Thresholds(), CRITICAL),
        (7.001, Thresholds(), WARNING),
        (200.0, Thresholds(handshake_warn_ms=12.5), WARNING),  # the median is 12.5
        (200.0, Thresholds(handshake_warn_ms=12.51), OK),
        (200.0, Thresholds(handshake_warn_ms=5, handshake_crit_ms=12.5), CRITICAL),
        (200.0, Thresholds(handshake_warn_ms=5, handshake_crit_ms=12.51), WARNING),
        (200.0, Thresholds(query_warn_ms=3.25), WARNING),  # the first query took 3.25
        (200.0, Thresholds(query_warn_ms=3.26), OK),
        (200.0, Thresholds(query_crit_ms=3.25), CRITICAL),
        (200.0, Thresholds(query_crit_ms=3.26), OK),
    ],
)
def test_nagios_thresholds(days: float, thresholds: Thresholds, state: int) -> None:
    assert nagios_line(result(*good(days)), thresholds)[0] == state


def test_nagios_states_from_checks() -> None:
    assert nagios_line(result(*good(), strict="refuse"), Thresholds())[0] == CRITICAL
    failing_should = attempt("reuse", "fail", Level.SHOULD)
    assert nagios_line(result(*good(), failing_should), Thresholds())[0] == WARNING
    assert nagios_line(result(*good(), attempt("pipelining", "fail")), Thresholds())[0] == CRITICAL
    state, line = nagios_line(result(error="resolving x: no address"), Thresholds())
    assert state == UNKNOWN and line.startswith("DOT UNKNOWN - ")


@pytest.mark.parametrize(("opportunistic", "state"),
                         [("fails", CRITICAL), ("not-tested", OK), ("encrypted", OK)])  # fmt: skip
def test_an_untested_opportunistic_verdict_is_not_critical(opportunistic: str, state: int) -> None:
    """``not-tested`` means the checks that decide it did not run (--checks): no alarm."""
    target = result(*good())
    target.verdict = Verdict("accept", opportunistic, ("why",))
    assert nagios_line(target, Thresholds(), "opportunistic")[0] == state


def test_nagios_summary_cannot_break_the_line() -> None:
    hostile = CheckAttempt("reuse", CheckStatus.WARN, Level.SHOULD, "RFC", {},
                           "evil | x=1\nDOT OK")  # fmt: skip
    _, line = nagios_line(result(*good(), hostile), Thresholds())
    assert "\n" not in line and line.count(" | ") == 1


def test_nagios_default_thresholds_are_the_documented_ones() -> None:
    # docs: getdns_server_mon's defaults (14, 7); the probe's --cert-warn-days/--cert-crit-days.
    assert (Thresholds().cert_warn_days, Thresholds().cert_crit_days) == (14.0, 7.0)
