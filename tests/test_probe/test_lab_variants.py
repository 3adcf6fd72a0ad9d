"""The full probe against every lab resolver: each variant gets its verdict.

Oracle: the lab's own construction (tests/lab/pki.py, tests/lab/unbound.py) says what
each variant is: an expired leaf, one for another name, a TLS 1.2-only server ...
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from dotaudit.probe.base import CheckAttempt, CheckStatus
from dotaudit.probe.runner import TargetResult
from tests.lab.lab import Lab

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schema" / "report.schema.json").read_text())
MAX_TLS_CONNECTIONS = 6
"""A full audit (TLS and DNS-level checks) uses at most 6 TLS or QUIC connections."""

Probe = Callable[..., TargetResult]


def attempt(result: TargetResult, check_id: str) -> CheckAttempt:
    found = result.attempt(check_id)
    assert found is not None, f"{check_id} did not run"
    return found


def test_good_unbound_passes_everything(lab: Lab, probe_lab: Probe) -> None:
    result = probe_lab("padded", pins=(lab["padded"].pin,))
    not_passing = {a.id: (a.status, a.error_reason) for a in result.attempts
                   if a.status is not CheckStatus.PASS}  # fmt: skip
    # The lab has no DoH server and no QUIC on this address, and tests never go online:
    # those checks skip, with their reason; everything else must pass.
    expected_skips = {"doh", "doq", "dnssec", "qname-min"}
    assert {k for k, (status, _) in not_passing.items() if status is CheckStatus.SKIP} <= (
        expected_skips
    )
    assert {k: v for k, v in not_passing.items() if k not in expected_skips} == {}
    for check_id in expected_skips & set(not_passing):
        assert not_passing[check_id][1], f"{check_id} skipped without a reason"
    assert (result.verdict.strict, result.verdict.opportunistic) == ("accept", "encrypted")
    assert attempt(result, "cert.pin").evidence["leaf_pin"] == lab["padded"].pin
    assert attempt(result, "reach.853").evidence["class"] == "open"


def test_full_audit_stays_within_the_connection_budget(padded_audit: TargetResult) -> None:
    stats = padded_audit.stats
    assert 1 <= stats["tls_handshakes"] + stats["quic_handshakes"] <= MAX_TLS_CONNECTIONS, stats
    ran = {a.id for a in padded_audit.attempts}
    assert {"dns.answer", "keepalive", "pipelining", "latency", "hijack.53"} <= ran


@pytest.mark.parametrize(
    ("variant", "check_id", "status", "reason_part", "strict"),
    [
        ("expired", "cert.chain", "fail", "expired", "refuse"),
        ("expired", "cert.expiry", "fail", "expired", "refuse"),
        ("expiring", "cert.expiry", "fail", "at or below 7", "accept"),
        ("wrong_host", "cert.name", "fail", "not for dns.test", "refuse"),
        ("self_signed", "cert.chain", "fail", "self-signed", "refuse"),
        ("untrusted", "cert.chain", "fail", "not a trusted CA", "refuse"),
        ("tls12", "tls.versions", "warn", "TLS 1.3 is not offered", "accept"),
    ],
)
def test_variant_verdicts(
    probe_lab: Probe, variant: str, check_id: str, status: str, reason_part: str, strict: str
) -> None:
    result = probe_lab(variant)
    found = attempt(result, check_id)
    assert found.status.value == status, found
    assert reason_part in (found.error_reason or "")
    assert result.verdict.strict == strict
    if strict == "refuse":
        assert any(check_id in r and "strict client would refuse" in r
                   for r in result.verdict.reasons) or check_id == "cert.expiry"  # fmt: skip
    # every lab variant refuses cleartext on 853 and speaks TLS
    assert attempt(result, "cleartext-on-853").status is CheckStatus.PASS
    assert result.verdict.opportunistic in ("encrypted", "intercepted")


def test_ipv6_target(lab: Lab) -> None:
    from dotaudit.probe.base import ProbeConfig
    from dotaudit.probe.registry import with_dependencies
    from dotaudit.probe.runner import run_target
    from dotaudit.probe.target import parse_target

    config = ProbeConfig(ca_file=str(lab.ca), timeout=2.0)
    checks = with_dependencies({"cert.chain", "cert.name"})
    result = run_target(parse_target("dns.test@[::1]:853"), config, checks=checks)
    assert result.target.address == "::1"
    assert result.verdict.strict == "accept", result.verdict.reasons


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dotaudit", "probe", *argv],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)  # fmt: skip


def test_cli_json_validates_and_exit_codes(lab: Lab) -> None:
    good, bad = lab["padded"], lab["wrong_host"]
    done = cli(f"dns.test@{good.address}", f"dns.test@{bad.address}", "--ca", str(lab.ca),
               "--checks", "cert.name,cert.chain", "-q")  # fmt: skip
    assert done.returncode == 1, done.stderr  # cert.name is a MUST and fails on wrong_host
    report = json.loads(done.stdout)
    jsonschema.validate(report, SCHEMA)
    assert report["kind"] == "probe"
    assert [t["verdict"]["strict"] for t in report["targets"]] == ["accept", "refuse"]
    only_good = cli(f"dns.test@{good.address}", "--ca", str(lab.ca), "--checks",
                    "cert.name,cert.chain", "-q")  # fmt: skip
    assert only_good.returncode == 0, only_good.stderr
    assert cli("not a target").returncode == 2
    assert cli("1.2.3.4", "--checks", "no-such-check").returncode == 2
