"""cert.expiry: days left judged at getdns_server_mon's thresholds (warn at or below 14,
fail at or below 7), against the lab's expiring leaf and getdns itself.

Oracles: getdns_server_mon ``tls-cert-valid`` (0/1/2 at its default 14,7 day thresholds)
on every lab DoT variant; the lab's construction (the expiring leaf ends 3 days after the
lab started).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dotaudit.probe.checks.cert_expiry import judge_days
from dotaudit.probe.runner import TargetResult
from tests.lab.lab import Lab
from tests.test_probe.lab_probe import HAVE_GETDNS, QNAME, attempt, getdns

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
