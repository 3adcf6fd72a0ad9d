"""cert.expiry: days left judged at getdns_server_mon's thresholds (warn at or below 14,
fail at or below 7), against the lab's expiring leaf and getdns itself.

Oracles: getdns_server_mon ``tls-cert-valid`` (0/1/2 at its default 14,7 day thresholds)
on every lab DoT variant; the lab's construction (the expiring leaf ends 3 days after the
lab started).

Without the lab: cert.expiry against a loopback TLS server. Oracle: getdns_server_mon's
thresholds (warn at 14 days, critical at 7) and the validity each test gave its certificate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from dotaudit.probe.base import CheckStatus
from dotaudit.probe.checks.cert_expiry import judge_days
from dotaudit.probe.runner import TargetResult
from tests.certgen import NOW, Issued, issue
from tests.lab.lab import Lab
from tests.test_probe.lab_probe import HAVE_GETDNS, QNAME, attempt, getdns
from tests.test_probe.test_checks.conftest import ServerProbe

EXIT_STATUS = {0: "pass", 1: "warn", 2: "fail"}
VARIANTS = ("padded", "expired", "expiring", "wrong_host", "self_signed", "untrusted", "tls12",
            "intercept")  # fmt: skip


@pytest.mark.parametrize(
    ("days", "status"),
    [(-0.1, "fail"), (-0.001, "fail"), (0.0, "fail"), (3.0, "fail"), (7.0, "fail"),
     (7.001, "warn"), (7.5, "warn"), (14.0, "warn"), (14.001, "pass"), (14.1, "pass")],
)  # fmt: skip
def test_expiry_thresholds_match_getdns_defaults(days: float, status: str) -> None:
    # Oracle: getdns_server_mon tls-cert-valid "warning or critical if days to expiry at or
    # below thresholds (default 14,7)".
    assert judge_days(days)[0] == status


@pytest.mark.parametrize(
    ("days", "said"),
    [(-0.001, "expired 0.0 days ago"), (0.0, "expires in 0.0 days (at or below 7)"),
     (7.0, "expires in 7.0 days (at or below 7)"), (14.0, "expires in 14.0 days (at or below 14)")],
)  # fmt: skip
def test_expiry_reason_says_which_side_of_zero(days: float, said: str) -> None:
    assert judge_days(days)[1] == said
    assert judge_days(14.001)[1] is None


@pytest.mark.lab
def test_expiring_is_judged_on_days_left(lab: Lab, probe_lab: Callable[..., TargetResult]) -> None:
    expiry = attempt(probe_lab("expiring"), "cert.expiry").evidence
    assert 2.0 < expiry["days_left"] <= 3.0  # the lab leaf ends 3 days after the lab started


@pytest.mark.lab
@pytest.mark.skipif(not HAVE_GETDNS, reason="getdns_server_mon not installed (getdns-utils)")
@pytest.mark.parametrize("variant", VARIANTS)
def test_tls_cert_valid_agrees(
    lab: Lab, probe_lab: Callable[..., TargetResult], variant: str
) -> None:
    oracle = getdns(lab, lab[variant].address, "tls-cert-valid", QNAME)
    assert oracle.returncode in EXIT_STATUS, oracle.stdout + oracle.stderr
    expiry = probe_lab(variant).attempt("cert.expiry")
    assert expiry is not None
    assert expiry.status.value == EXIT_STATUS[oracle.returncode], (oracle.stdout, expiry)


def _leaf(root: Issued, days: float, before: float = -30) -> Issued:
    return issue(
        issuer=root,
        not_before=NOW + dt.timedelta(days=before),
        not_after=NOW + dt.timedelta(days=days),
    )


def test_long_validity_passes_with_its_dates(probe_server: ServerProbe, root: Issued) -> None:
    leaf = _leaf(root, 90)
    attempt = probe_server(leaf)["cert.expiry"]
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


def test_ten_days_left_warns(probe_server: ServerProbe, root: Issued) -> None:
    attempt = probe_server(_leaf(root, 10.02))["cert.expiry"]
    assert attempt.status is CheckStatus.WARN
    assert attempt.error_reason == "expires in 10.0 days (at or below 14)"


def test_three_days_left_fails(probe_server: ServerProbe, root: Issued) -> None:
    attempt = probe_server(_leaf(root, 3.02))["cert.expiry"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason == "expires in 3.0 days (at or below 7)"


def test_expired_fails_with_how_long_ago(probe_server: ServerProbe, root: Issued) -> None:
    attempt = probe_server(_leaf(root, -2.5))["cert.expiry"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason is not None
    assert attempt.error_reason in ("expired 2.5 days ago", "expired 2.6 days ago")


def test_not_yet_valid_fails(probe_server: ServerProbe, root: Issued) -> None:
    attempt = probe_server(_leaf(root, 90, before=1))["cert.expiry"]
    assert attempt.status is CheckStatus.FAIL
    assert attempt.error_reason == "the certificate is not valid yet"


def test_failures_and_warnings_carry_the_dates(probe_server: ServerProbe, root: Issued) -> None:
    for leaf in (_leaf(root, 10.02), _leaf(root, 3.02), _leaf(root, 90, before=1)):
        attempt = probe_server(leaf)["cert.expiry"]
        assert attempt.status is not CheckStatus.PASS
        assert attempt.evidence["not_after"] == leaf.cert.not_valid_after_utc.isoformat()
        assert attempt.evidence["warn_days"] == 14 and attempt.evidence["fail_days"] == 7


def test_valid_from_its_first_instant_and_days_rounded_to_hundredths(
    probe_server: ServerProbe, root: Issued
) -> None:
    leaf = _leaf(root, 90.1234, before=-1)
    start = leaf.cert.not_valid_before_utc
    attempt = probe_server(leaf, now=start)["cert.expiry"]
    assert attempt.status is CheckStatus.PASS
    expected = (leaf.cert.not_valid_after_utc - start).total_seconds() / 86400
    assert attempt.evidence["days_left"] == round(expected, 2)
    assert attempt.evidence["days_left"] != round(expected, 3)
