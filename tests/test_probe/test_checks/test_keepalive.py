"""keepalive: the advertised idle timeout (RFC 7828, 100 ms units) against the measured
idle close, on the lab's Unbound variants and dnsdist, and against getdns_server_mon.

Oracles: the lab's construction (tests/lab/unbound.py: edns-tcp-keepalive and its
timeout, tcp-idle-timeout; dnsdist's 2 s tcpRecvTimeout), RFC 7828 §3.1, and
getdns_server_mon ``keepalive``.
"""

from __future__ import annotations

import re

import pytest

from dotaudit.probe.base import ProbeConfig
from dotaudit.probe.checks.keepalive import judge, wait_needed
from dotaudit.probe.registry import with_dependencies
from dotaudit.probe.runner import run_target
from dotaudit.probe.target import parse_target
from tests.lab.lab import Lab
from tests.test_probe.lab_probe import (
    DOT_VARIANTS,
    HAVE_GETDNS,
    QNAME,
    evidence,
    getdns,
    probe,
    status,
)


@pytest.mark.parametrize(
    ("advertised", "end", "waited", "wait", "status"),
    [
        (None, "closed", 5.0, 20.0, "warn"),
        (2.0, "closed", 2.05, 3.5, "pass"),
        (30.0, "closed", 10.0, 20.0, "warn"),  # closes long before the advertised 30 s
        (120.0, "open", 20.0, 20.0, "pass"),  # the wait cannot reach 120 s
        (2.0, "open", 3.5, 3.5, "warn"),  # still open well past the advertised 2 s
        (0.0, "open", 1.0, 1.0, "warn"),
        # Tolerance: a tenth of the advertised timeout, at least half a second.
        (2.0, "closed", 1.5, 3.5, "pass"),  # closed 0.5 s early: at the tolerance
        (2.0, "closed", 1.49, 3.5, "warn"),  # just beyond it
        (2.0, "open", 2.49, 2.49, "pass"),  # waited just short of 2 + 0.5 s
        (2.0, "open", 2.5, 2.5, "warn"),  # still open at 2 + 0.5 s
        (10.0, "closed", 9.0, 11.5, "pass"),  # 10 s: the tolerance is 1 s
        (10.0, "closed", 8.99, 11.5, "warn"),
        (10.0, "open", 10.99, 10.99, "pass"),
        (10.0, "open", 11.0, 11.0, "warn"),
        (0.1, "open", 0.1, 0.1, "pass"),  # the smallest advertisable value, 1 x 100 ms
        (None, "open", 20.0, 20.0, "warn"),
        # Not measured (the default): the advertisement alone is judged.
        (120.0, "open", 0.0, 0.0, "pass"),
        (None, "open", 0.0, 0.0, "warn"),
        (0.0, "open", 0.0, 0.0, "warn"),
    ],
)
def test_keepalive_judge(advertised: float | None, end: str, waited: float, wait: float,
                         status: str) -> None:  # fmt: skip
    assert judge(advertised, end, waited, wait)[0] == status


def test_what_was_not_waited_for_is_said() -> None:
    assert judge(120.0, "open", 0.0, 0.0)[1] == (
        "advertised 120 s; idle close not measured (use --max-idle-wait 132 to measure)"
    )
    # waited, but not long enough to reach the advertised timeout
    assert judge(120.0, "open", 20.0, 20.0)[1].endswith("(use --max-idle-wait 132 to measure)")
    assert wait_needed(2.0) == 4 and wait_needed(120.0) == 132 and wait_needed(0.1) == 2


@pytest.mark.lab
def test_the_default_probe_does_not_wait_for_the_idle_close(lab: Lab) -> None:
    """Before, every probe waited up to 20 s here: 20 of a healthy resolver's 22 s."""
    resolver = lab["padded"]
    config = ProbeConfig(ca_file=str(lab.ca), qname=QNAME, timeout=2.0)
    assert config.options.max_idle_wait is None  # the check's own default applies
    result = run_target(parse_target(f"{resolver.hostname}@{resolver.address}"), config,
                        checks=with_dependencies({"keepalive"}))  # fmt: skip
    found = evidence(result, "keepalive")
    assert (found["idle_close"], found["waited_s"], found["max_wait_s"]) == ("not measured", 0, 0)
    assert found["advertised_ms"] == resolver.keepalive_ms and found["wait_needed_s"] == 132
    assert status(result, "keepalive") == "pass"
    assert "idle close not measured (use --max-idle-wait 132" in (
        result.attempt("keepalive").error_reason or ""  # type: ignore[union-attr]
    )


@pytest.mark.lab
def test_no_keepalive_unbound_warns(lab: Lab) -> None:
    result = probe(lab, "no_keepalive", {"keepalive"})
    assert status(result, "keepalive") == "warn"
    assert evidence(result, "keepalive")["advertised"] is False


@pytest.mark.lab
def test_short_timeout_advertised_matches_measured_idle_close(lab: Lab) -> None:
    resolver = lab["short_timeout"]
    result = probe(lab, "short_timeout", {"keepalive"})
    found = evidence(result, "keepalive")
    assert found["advertised_units"] == resolver.keepalive_ms // 100  # 20 x 100 ms
    measured = found["measured_idle_close_ms"]
    assert isinstance(measured, int)
    assert abs(measured - resolver.keepalive_ms) <= 600, found
    assert status(result, "keepalive") == "pass" and found["mismatch"] is False


@pytest.mark.lab
def test_dnsdist_keepalive_is_relayed_but_not_honoured(lab: Lab) -> None:
    # dnsdist relays the backend Unbound's keepalive option (120 s) yet closes idle
    # client connections after its own 2 s tcpRecvTimeout: the mismatch is the finding.
    result = probe(lab, "intercept", {"keepalive"})
    found = evidence(result, "keepalive")
    assert status(result, "keepalive") == "warn" and found["mismatch"] is True, found
    assert found["idle_end"] != "open"
    assert found["measured_idle_close_ms"] < found["advertised_ms"]  # type: ignore[operator]


@pytest.mark.lab
@pytest.mark.skipif(not HAVE_GETDNS, reason="getdns_server_mon not installed (getdns-utils)")
@pytest.mark.parametrize("variant", DOT_VARIANTS)
def test_keepalive_agrees_with_getdns(lab: Lab, variant: str) -> None:
    """getdns ``keepalive`` is OK when the server sent edns-tcp-keepalive, and prints the
    value: so OK <=> our ``advertised``, and the milliseconds must be equal."""
    ours = probe(lab, variant, {"keepalive"}, max_idle_wait=0.5)
    keepalive = getdns(lab, lab[variant].address, "keepalive", QNAME)
    assert keepalive.returncode in (0, 2), keepalive.stdout
    seen = ours.attempt("keepalive")
    assert seen is not None
    assert seen.evidence["advertised"] == (keepalive.returncode == 0), (keepalive.stdout, seen)
    told = re.search(r"idle timeout now (\d+)ms", keepalive.stdout)
    if told:
        assert int(told.group(1)) == seen.evidence["advertised_ms"]
