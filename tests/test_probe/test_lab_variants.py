"""The full probe against every lab resolver: each variant gets its verdict.

Oracle: the lab's own construction (tests/lab/pki.py, tests/lab/unbound.py) says what
each variant is: an expired leaf, one for another name, a TLS 1.2-only server ...
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from cryptography import x509

from dotaudit.probe.base import CheckAttempt, CheckStatus
from dotaudit.probe.runner import TargetResult, findings_of, result_severity
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
    # The lab has no DoH server and no QUIC on this address, and 853 sends no reset: those
    # checks have nothing to test. Tests never go online: those checks are not tested.
    assert {k: status for k, (status, _) in not_passing.items()} == {
        "doh": CheckStatus.NOT_APPLICABLE,
        "doq": CheckStatus.NOT_APPLICABLE,
        "rst-injection": CheckStatus.NOT_APPLICABLE,
        "dnssec": CheckStatus.SKIP,
        "qname-min": CheckStatus.SKIP,
    }
    for check_id, (_, reason) in not_passing.items():
        assert reason, f"{check_id} is {not_passing[check_id][0]} without a reason"
    assert (result.verdict.strict, result.verdict.opportunistic) == ("accept", "encrypted")
    assert attempt(result, "cert.pin").evidence["leaf_pin"] == lab["padded"].pin
    assert attempt(result, "reach.853").evidence["class"] == "open"
    assert findings_of(result, "strict") == [] and result_severity(result, "strict") is None


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


# -- cert.name: the DNS-ID when a name is given, else the IP-ID (RFC 6125 §6.4, RFC 8310 §8.1)


def probe_checks(target: str, lab: Lab, checks: set[str]) -> TargetResult:
    from dotaudit.probe.base import ProbeConfig
    from dotaudit.probe.registry import with_dependencies
    from dotaudit.probe.runner import run_target
    from dotaudit.probe.target import parse_target

    config = ProbeConfig(ca_file=str(lab.ca), timeout=2.0)
    return run_target(parse_target(target), config, checks=with_dependencies(checks))


def test_wrong_name_is_refused_even_when_the_certificate_lists_the_target_ip(lab: Lab) -> None:
    """The padded Unbound's leaf is for dns.test and lists 127.53.0.1 as an iPAddress SAN
    (tests/lab/pki.py); asked for other.test at that address, the name must decide."""
    resolver = lab["padded"]
    result = probe_checks(f"other.test@{resolver.address}", lab, {"cert.name", "cert.chain"})
    name = attempt(result, "cert.name")
    assert resolver.address in name.evidence["san_ip"]
    assert name.evidence["san_dns"] == ["dns.test"]
    assert name.status is CheckStatus.FAIL, name
    assert "not for other.test" in (name.error_reason or "")
    assert attempt(result, "cert.chain").status is CheckStatus.PASS
    assert result.verdict.strict == "refuse"


def test_address_only_target_passes_on_its_ip_san(lab: Lab) -> None:
    resolver = lab["padded"]
    result = probe_checks(resolver.address, lab, {"cert.name"})
    name = attempt(result, "cert.name")
    assert name.evidence["name"] is None and name.evidence["reference"] == (
        f"IP-ID {resolver.address}"
    )
    assert name.status is CheckStatus.PASS, name
    assert "matched the address" in (name.error_reason or "")


def test_address_only_target_fails_without_its_ip_san(lab: Lab) -> None:
    """The wrong_host leaf carries no IP SANs at all (tests/lab/pki.py)."""
    resolver = lab["wrong_host"]
    result = probe_checks(resolver.address, lab, {"cert.name"})
    name = attempt(result, "cert.name")
    assert name.evidence["san_ip"] == []
    assert name.status is CheckStatus.FAIL, name
    assert f"does not list {resolver.address} as an iPAddress SAN" in (name.error_reason or "")


# -- --fail-on weighs check results too, not only findings --------------------------------


@pytest.mark.parametrize(
    ("fail_on", "status"),
    [("info", 1), ("low", 1), ("medium", 0), ("high", 0), ("none", 0)],
)
@pytest.mark.parametrize("bulk", [False, True], ids=["targets", "targets-file"])
def test_probe_fail_on_counts_a_warning_as_low(
    lab: Lab, tmp_path: Path, fail_on: str, status: int, bulk: bool
) -> None:
    """The TLS 1.2-only Unbound: a strict client accepts it, but tls.versions warns, which
    README weighs as low: at or above --fail-on low, below medium. The warning is the
    finding the exit status comes from (before, it exited 1 under "0 findings")."""
    resolver = lab["tls12"]
    target = f"dns.test@{resolver.address}"
    out = tmp_path / "probe.json"
    options = ["--ca", str(lab.ca), "--checks", "tls.versions,cert.chain,cert.name",
               "-q", "-o", str(out), "--fail-on", fail_on]  # fmt: skip
    if bulk:
        targets = tmp_path / "targets.txt"
        targets.write_text(target + "\n")
        done = cli("--targets", str(targets), *options)
    else:
        done = cli(target, *options)
    report = json.loads(out.read_text())
    assert [(f["id"], f["severity"], f["evidence"]["check"]) for f in report["findings"]] == [
        ("DA-PROBE-004", "low", "tls.versions")
    ]
    assert report["summary"]["findings"] == 1
    (only,) = report["targets"]
    assert only["verdict"]["strict"] == "accept" and only["severity"] == "low"
    assert {c["id"]: c["status"] for c in only["checks"]}["tls.versions"] == "warn"
    assert done.returncode == status, done.stderr


def test_a_healthy_resolver_has_no_finding_and_exits_0_at_fail_on_low(
    lab: Lab, tmp_path: Path
) -> None:
    """The default probe of the padded Unbound: nothing to list, nothing to exit 1 for."""
    resolver = lab["padded"]
    out = tmp_path / "probe.json"
    done = cli(f"dns.test@{resolver.address}", "--ca", str(lab.ca), "--qname", "www.lab.test",
               "--timeout", "2", "--fail-on", "low", "-o", str(out))  # fmt: skip
    report = json.loads(out.read_text())
    assert (done.returncode, report["findings"], report["targets"][0]["severity"]) == (
        0, [], None)  # fmt: skip
    assert "(0 total)" in done.stderr


@pytest.mark.parametrize(("mode", "severity", "status"),
                         [("opportunistic", "low", 0), ("strict", "high", 1)])  # fmt: skip
def test_a_wrong_name_weighs_by_mode(
    lab: Lab, tmp_path: Path, mode: str, severity: str, status: int
) -> None:
    """RFC 8310 §5: an opportunistic client that cannot authenticate the resolver still
    encrypts, so a wrong name is low for it; a strict client refuses. Before, --mode
    opportunistic still exited 1 with [HIGH] DA-PROBE-001."""
    resolver = lab["padded"]
    out = tmp_path / "probe.json"
    done = cli(resolver.address, "--name", "wrong.example", "--ca", str(lab.ca),
               "--checks", "cert.name,cert.chain,interception", "--mode", mode,
               "-o", str(out))  # fmt: skip
    assert done.returncode == status, done.stderr
    report = json.loads(out.read_text())
    assert [(f["id"], f["severity"]) for f in report["findings"]] == [("DA-PROBE-001", severity)]
    assert f"[{severity.upper():6}] DA-PROBE-001" in done.stderr
    (finding,) = report["findings"]
    assert finding["evidence"]["cause"] == "authentication"
    assert "wrong.example" in finding["remediation"]
    assert "subjectAltName" in finding["remediation"]
    assert report["targets"][0]["verdict"]["opportunistic"] == "encrypted"


# -- cert.expiry on a real leaf, the probe's clock set at each threshold ------------------

DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)


def probe_expiry_at(lab: Lab, now: dt.datetime) -> CheckAttempt:
    from dotaudit.probe.base import ProbeConfig
    from dotaudit.probe.registry import with_dependencies
    from dotaudit.probe.runner import run_target
    from dotaudit.probe.target import parse_target

    resolver = lab["padded"]
    config = ProbeConfig(ca_file=str(lab.ca), timeout=2.0, now=lambda: now)
    result = run_target(parse_target(f"dns.test@{resolver.address}"), config,
                        checks=with_dependencies({"cert.expiry"}))  # fmt: skip
    return attempt(result, "cert.expiry")


def valid_leaf(lab: Lab) -> x509.Certificate:
    return x509.load_pem_x509_certificate(lab.pki.leaf("valid").cert.read_bytes())


@pytest.mark.parametrize(
    ("before_end", "status"),
    [
        (14 * DAY + SECOND, "pass"),
        (14 * DAY, "warn"),  # warn at or below 14 days (the check's title, getdns' default)
        (7 * DAY + SECOND, "warn"),
        (7 * DAY, "fail"),  # fail at or below 7
        (SECOND, "fail"),
        (-SECOND, "fail"),  # expired
    ],
    ids=["14d+1s", "14d", "7d+1s", "7d", "1s", "expired"],
)
def test_expiry_of_a_real_leaf_at_each_threshold(
    lab: Lab, before_end: dt.timedelta, status: str
) -> None:
    leaf = valid_leaf(lab)
    found = probe_expiry_at(lab, leaf.not_valid_after_utc - before_end)
    assert found.status.value == status, found
    assert found.evidence["days_left"] == round(before_end / DAY, 2)
    assert (found.evidence["warn_days"], found.evidence["fail_days"]) == (14, 7)


@pytest.mark.parametrize(
    ("after_start", "status"),
    [(-SECOND, "fail"), (dt.timedelta(0), "pass")],
    ids=["before-not-before", "at-not-before"],
)
def test_expiry_check_refuses_a_leaf_not_yet_valid(
    lab: Lab, after_start: dt.timedelta, status: str
) -> None:
    leaf = valid_leaf(lab)
    found = probe_expiry_at(lab, leaf.not_valid_before_utc + after_start)
    assert found.status.value == status, found
    if status == "fail":
        assert found.error_reason == "the certificate is not valid yet"
