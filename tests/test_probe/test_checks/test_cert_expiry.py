"""cert.expiry against a loopback TLS server. Oracle: getdns_server_mon's thresholds
(warn at 14 days, critical at 7) and the validity each test gave its certificate."""

from __future__ import annotations

import datetime as dt

from dotaudit.probe.base import CheckStatus
from tests.test_probe.certgen import NOW, Issued, issue
from tests.test_probe.test_checks.conftest import Probe


def _leaf(root: Issued, days: float, before: float = -30) -> Issued:
    return issue(
        issuer=root,
        not_before=NOW + dt.timedelta(days=before),
        not_after=NOW + dt.timedelta(days=days),
    )


def test_long_validity_passes_with_its_dates(probe: Probe, root: Issued) -> None:
    leaf = _leaf(root, 90)
    attempt = probe(leaf)["cert.expiry"]
    assert attempt.status is CheckStatus.PASS
    evidence = dict(attempt.evidence)
    days = evidence.pop("days_left")
    assert 89.9 < days <= 90.0
    assert evidence == {
        "not_before": leaf.cert.not_valid_before_utc.isoformat(),
        "not_after": leaf.cert.not_valid_after_utc.isoformat(),
        "warn_days": 14,
        "fail_days": 7,
    }


def test_ten_days_left_warns(probe: Probe, root: Issued) -> None:
    attempt = probe(_leaf(root, 10.02))["cert.expiry"]
    assert attempt.status is CheckStatus.WARN
    assert attempt.error_reason == "expires in 10.0 days (at or below 14)"


def test_three_days_left_fails(probe: Probe, root: Issued) -> None:
    attempt = probe(_leaf(root, 3.02))["cert.expiry"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason == "expires in 3.0 days (at or below 7)"


def test_expired_fails_with_how_long_ago(probe: Probe, root: Issued) -> None:
    attempt = probe(_leaf(root, -2.5))["cert.expiry"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason is not None
    assert attempt.error_reason in ("expired 2.5 days ago", "expired 2.6 days ago")


def test_not_yet_valid_fails(probe: Probe, root: Issued) -> None:
    attempt = probe(_leaf(root, 90, before=1))["cert.expiry"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason == "the certificate is not valid yet"


def test_failures_and_warnings_carry_the_dates(probe: Probe, root: Issued) -> None:
    for leaf in (_leaf(root, 10.02), _leaf(root, 3.02), _leaf(root, 90, before=1)):
        attempt = probe(leaf)["cert.expiry"]
        assert attempt.status is not CheckStatus.PASS
        assert attempt.evidence["not_after"] == leaf.cert.not_valid_after_utc.isoformat()
        assert attempt.evidence["warn_days"] == 14 and attempt.evidence["fail_days"] == 7


def test_valid_from_its_first_instant_and_days_rounded_to_hundredths(
    probe: Probe, root: Issued
) -> None:
    leaf = _leaf(root, 90.1234, before=-1)
    start = leaf.cert.not_valid_before_utc
    attempt = probe(leaf, now=start)["cert.expiry"]
    assert attempt.status is CheckStatus.PASS
    expected = (leaf.cert.not_valid_after_utc - start).total_seconds() / 86400
    assert attempt.evidence["days_left"] == round(expected, 2)
    assert attempt.evidence["days_left"] != round(expected, 3)
