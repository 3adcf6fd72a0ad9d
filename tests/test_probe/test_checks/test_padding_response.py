"""padding.response: a padded query gets a padded answer in 468-octet blocks (RFC 8467
§4.1), on the lab's padded and unpadded servers, and getdns_server_mon agrees.

Oracles: the lab's construction (tests/lab/unbound.py: pad-responses and the 468 block;
dnsdist relays without padding), RFC 8467 §4.1 arithmetic on the measured lengths, and
getdns_server_mon ``tls-padding 128`` (OK when the response carries the padding option:
presence only, so OK <=> padding.response passes or warns).
"""

from __future__ import annotations

import pytest

from dotaudit.probe.runner import TargetResult
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

pytestmark = pytest.mark.lab

PADDING_ONLY = {"padding.response", "padding.unsolicited"}


def test_padded_unbound_pads_to_468(padded_audit: TargetResult) -> None:
    assert status(padded_audit, "padding.response") == "pass"
    found = evidence(padded_audit, "padding.response")
    assert found["query_len"] % 128 == 0
    assert found["response_len"] % 468 == 0 and found["padded"] is True
    assert found["nonzero_padding"]["accepted"] is True  # type: ignore[index]


@pytest.mark.parametrize("variant", ["unpadded", "intercept"])
def test_unpadded_servers_fail_padding(lab: Lab, variant: str) -> None:
    result = probe(lab, variant, PADDING_ONLY)
    assert status(result, "padding.response") == "fail"
    found = evidence(result, "padding.response")
    assert found["padded"] is False and found["response_len"] % 468 != 0


@pytest.mark.skipif(not HAVE_GETDNS, reason="getdns_server_mon not installed (getdns-utils)")
@pytest.mark.parametrize("variant", DOT_VARIANTS)
def test_padding_agrees_with_getdns(lab: Lab, variant: str) -> None:
    ours = probe(lab, variant, {"padding.response"})
    padding = getdns(lab, lab[variant].address, "tls-padding", "128", QNAME)
    assert padding.returncode in (0, 2), padding.stdout
    attempt = ours.attempt("padding.response")
    assert attempt is not None
    assert (attempt.status.value in ("pass", "warn")) == (padding.returncode == 0), (
        padding.stdout, attempt)  # fmt: skip
