"""Misbehaving servers (tests/test_probe/faults.py): every check ends within its budget
with a clear error attempt, and the probe as a whole never hangs."""

from __future__ import annotations

from pathlib import Path

from dotaudit.probe.base import CheckStatus, ProbeConfig
from dotaudit.probe.registry import BY_ID
from dotaudit.probe.runner import TargetResult, check_budget, run_target
from dotaudit.probe.target import parse_target
from tests.test_probe.faults import FaultServer

TIMEOUT = 1.0
CHECK_IDS = ("reach.853", "tls.versions", "cert.chain", "interception", "tls.resumption")


def probe(port: int) -> TargetResult:
    config = ProbeConfig(name="fault.test", timeout=TIMEOUT, target_budget=20.0)
    return run_target(
        parse_target(f"127.0.0.1:{port}"), config, checks=[BY_ID[c] for c in CHECK_IDS]
    )


def status(result: TargetResult, check_id: str) -> CheckStatus:
    attempt = result.attempt(check_id)
    assert attempt is not None
    return attempt.status


def test_tarpit_times_out_within_budget(tmp_path: Path) -> None:
    with FaultServer("tarpit", tmp_path) as server:
        result = probe(server.port)
    assert status(result, "reach.853") is CheckStatus.PASS  # TCP is accepted
    versions = result.attempt("tls.versions")
    assert versions is not None and versions.status is CheckStatus.ERROR
    assert versions.error_reason is not None and "timeout after 1.0 s" in versions.error_reason
    # The check ends by its budget (the point of the test, so timed: half the budget again
    # leaves a loaded machine room while a check that ignored it would run on).
    assert versions.elapsed_s < 1.5 * check_budget(BY_ID["tls.versions"], ProbeConfig())
    # One handshake attempt for the whole probe, not one per check: the failed handshake
    # is shared, and later checks report it at once instead of waiting again.
    assert result.stats["tls_handshakes"] == 1
    assert status(result, "cert.chain") is CheckStatus.ERROR
    assert result.verdict.strict == "refuse"
    assert any("timeout" in r for r in result.verdict.reasons)


def test_garbage_after_handshake_is_a_clear_error(tmp_path: Path) -> None:
    with FaultServer("garbage", tmp_path) as server:
        result = probe(server.port)
    assert status(result, "tls.versions") is not CheckStatus.ERROR  # the handshake works
    resumption = result.attempt("tls.resumption")
    assert resumption is not None and resumption.status is CheckStatus.ERROR
    assert resumption.error_reason is not None
    assert "not a DNS message" in resumption.error_reason
    assert resumption.evidence["error_kind"] == "malformed"
    # Garbage is answered at once: no check waited for its timeout to notice it.
    assert not [a.id for a in result.attempts if "timeout" in (a.error_reason or "")]
    assert result.verdict.opportunistic == "encrypted"  # TLS itself works


def test_close_mid_handshake_is_a_clear_error(tmp_path: Path) -> None:
    with FaultServer("close-mid-handshake", tmp_path) as server:
        result = probe(server.port)
    versions = result.attempt("tls.versions")
    assert versions is not None and versions.status is CheckStatus.ERROR
    assert versions.error_reason is not None
    assert "closed the connection during the TLS handshake" in versions.error_reason
    interception = result.attempt("interception")
    assert interception is not None and interception.status is CheckStatus.WARN
    assert "cut short" in (interception.error_reason or "")
    # The close is noticed as a close (never waited out as a timeout) and shared: one
    # handshake for the whole probe.
    assert not [a.id for a in result.attempts if "timeout" in (a.error_reason or "")]
    assert result.stats["tls_handshakes"] == 1
