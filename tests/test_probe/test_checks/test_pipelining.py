"""pipelining: ten queries on one connection all answered (RFC 7858 §3.3), and out-of-order
answers shown when the resolver answers one name slowly.

Oracle: getdns_server_mon ``OOOR``, which asks getdnsapi.net, then
``400.nNNNN.delay.getdnsapi.net`` and getdnsapi.net together, OK when the second answer
comes first. Only a resolver that serves those names can be judged: a real Unbound whose
delay zone is forwarded to a slow in-test authority (tests/test_probe/lab_probe.py).
Against it our check, given the same slow name, must report out-of-order too; on the
plain variants getdns cannot resolve its names and says WARNING, while ours reports in
order.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dotaudit.probe.base import CheckOptions, ProbeConfig
from dotaudit.probe.runner import TargetResult, run_target
from dotaudit.probe.target import parse_target
from tests.lab.lab import Lab
from tests.lab.procs import LabError
from tests.test_probe.lab_probe import (
    HAVE_GETDNS,
    OOOR_ADDRESS,
    evidence,
    getdns,
    probe,
    start_slow_unbound,
    status,
)

pytestmark = pytest.mark.lab

needs_getdns = pytest.mark.skipif(
    not HAVE_GETDNS, reason="getdns_server_mon not installed (getdns-utils)"
)


def test_ten_pipelined_queries_all_answered(padded_audit: TargetResult) -> None:
    found = evidence(padded_audit, "pipelining")
    assert status(padded_audit, "pipelining") == "pass"
    assert found["answered"] == found["sent"] == 10
    assert sorted(found["response_order"]) == list(range(10))  # type: ignore[arg-type]
    assert "no slow name given" in str(found["order_note"])


@pytest.fixture(scope="module")
def slow_unbound(lab: Lab) -> Iterator[str]:
    try:
        authority, proc = start_slow_unbound(lab)
    except (LabError, OSError) as exc:
        pytest.skip(f"cannot start the slow Unbound: {exc}")
    yield OOOR_ADDRESS
    lab.pm.stop(proc)  # type: ignore[arg-type]
    authority.close()


@needs_getdns
def test_out_of_order_agrees_on_a_slow_real_unbound(lab: Lab, slow_unbound: str) -> None:
    oracle = getdns(lab, slow_unbound, "OOOR")
    assert oracle.returncode == 0, oracle.stdout  # "Responses are not in query order"
    config = ProbeConfig(
        ca_file=str(lab.ca), qname="getdnsapi.net", timeout=2.0,
        checks=frozenset({"pipelining"}),
        options=CheckOptions(slow_qname="400.n0001.delay.getdnsapi.net"),
    )  # fmt: skip
    ours = run_target(parse_target(f"dns.test@{slow_unbound}"), config).attempt("pipelining")
    assert ours is not None and ours.status.value == "pass", ours
    assert ours.evidence["out_of_order"] is True
    assert ours.evidence["slow_answered_last"] is True


@needs_getdns
@pytest.mark.parametrize("variant", ["padded", "intercept"])
def test_plain_variants_cannot_show_out_of_order(lab: Lab, variant: str) -> None:
    oracle = getdns(lab, lab[variant].address, "OOOR")
    # The lab has no getdnsapi.net: getdns cannot run its test (WARNING, zero answers).
    assert oracle.returncode == 1 and "Zero entries" in oracle.stdout, oracle.stdout
    ours = probe(lab, variant, {"pipelining"})
    attempt = ours.attempt("pipelining")
    assert attempt is not None and attempt.evidence["out_of_order"] is False
