"""Part-2 pieces without the network: the Nagios line, targets files, the keepalive
verdict and the bulk runner on closed loopback addresses.

Oracles: the monitoring-plugins output format (``STATE - text | label=value;warn;crit``)
and exit codes 0-3; RFC 7828 §3.1 (timeouts in 100 ms units).
"""

from __future__ import annotations

import io
import json
import re

import pytest

from dotaudit.probe.base import CheckAttempt, CheckStatus, Level, ProbeConfig
from dotaudit.probe.bulk import JsonlStream, aggregate, parse_targets_file, run_bulk
from dotaudit.probe.checks.keepalive import judge
from dotaudit.probe.nagios import CRITICAL, OK, UNKNOWN, WARNING, Thresholds, nagios_line
from dotaudit.probe.runner import TargetResult
from dotaudit.probe.target import TargetError, parse_target
from dotaudit.probe.verdict import Verdict

PERF = re.compile(r"^[a-z_]+=-?\d+(\.\d+)?;[\d.]*;[\d.]*$")
PIN = "ghwIGlx+fVRKVpwmWZzNUQuFXmfMbM+rm4n7PDOl44Y="


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


def test_nagios_summary_cannot_break_the_line() -> None:
    hostile = CheckAttempt("reuse", CheckStatus.WARN, Level.SHOULD, "RFC", {},
                           "evil | x=1\nDOT OK")  # fmt: skip
    _, line = nagios_line(result(*good(), hostile), Thresholds())
    assert "\n" not in line and line.count(" | ") == 1


def test_targets_file() -> None:
    config = ProbeConfig()
    text = (
        "# resolvers\n192.0.2.1\ndns.test@192.0.2.2:8853  # pinned\n"
        f"192.0.2.3 dns.test pin={PIN}\n\n"
    )
    found = parse_targets_file(io.StringIO(text), config)
    assert [t.target.address for t in found] == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert found[1].target.port == 8853 and found[1].target.name == "dns.test"
    assert found[2].target.name == "dns.test" and found[2].config.pins == (PIN,)
    assert found[0].config is config
    for bad in ("192.0.2.1 pin=!!", "not a target at all", "192.0.2.1 dns.test other.test"):
        with pytest.raises(TargetError, match="line 1"):
            parse_targets_file(io.StringIO(bad), config)


@pytest.mark.parametrize(
    ("advertised", "end", "waited", "wait", "status"),
    [
        (None, "closed", 5.0, 20.0, "warn"),
        (2.0, "closed", 2.05, 3.5, "pass"),
        (30.0, "closed", 10.0, 20.0, "warn"),  # closes long before the advertised 30 s
        (120.0, "open", 20.0, 20.0, "pass"),  # the wait cannot reach 120 s
        (2.0, "open", 3.5, 3.5, "warn"),  # still open well past the advertised 2 s
        (0.0, "open", 1.0, 1.0, "warn"),
    ],
)
def test_keepalive_judge(advertised: float | None, end: str, waited: float, wait: float,
                         status: str) -> None:  # fmt: skip
    assert judge(advertised, end, waited, wait)[0] == status


def test_bulk_streams_every_result_on_closed_addresses() -> None:
    config = ProbeConfig(timeout=0.5, checks=frozenset({"reach.853"}))
    targets = parse_targets_file(io.StringIO("".join(f"127.54.9.{i}\n" for i in range(1, 31))),
                                 config)  # fmt: skip
    out = io.StringIO()
    stream = JsonlStream(out)
    ticks: list[int] = []
    results = run_bulk(targets, concurrency=8, on_result=stream.write,
                       progress=lambda done, total: ticks.append(done))  # fmt: skip
    assert [r.target.address for r in results] == [t.target.address for t in targets]
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(line["target"] for line in lines) == sorted(t.target.target for t in targets)
    assert ticks == list(range(1, 31))
    summary = aggregate(results)
    assert summary["reach_853"] == {"refused": 30} and summary["strict_accept"] == 0


def test_bulk_exit_code_is_one_at_or_above_the_threshold_only() -> None:
    from dotaudit.probe.cli_part2 import exit_code

    clean = result(*good())
    medium = result(*good(), attempt("cert.quality", "fail", Level.SHOULD))
    # A SHOULD failure weighs medium: at or above --fail-on medium or low, not high.
    assert exit_code([clean, medium], "strict", "medium", 0) == 1
    assert exit_code([clean, medium], "strict", "low", 0) == 1
    assert exit_code([clean, medium], "strict", "high", 0) == 0
    assert exit_code([medium, clean], "strict", "high", 0) == 0
    # The code so far (e.g. 2 for an output error) stands unless findings decide.
    assert exit_code([clean], "strict", "low", 2) == 2
    assert exit_code([medium], "strict", "medium", 2) == 1
    assert exit_code([medium], "strict", "none", 2) == 2
    assert exit_code([medium], "strict", "none", 0) == 0
    assert exit_code([], "strict", "info", 0) == 0
    # The verdict counts as well: a refusing resolver is high in strict mode only.
    refused = result(*good(), strict="refuse")
    assert exit_code([refused], "strict", "high", 0) == 1
    assert exit_code([refused], "opportunistic", "high", 0) == 0
