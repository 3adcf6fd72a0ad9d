"""getdns_server_mon (Debian getdns-utils) as the oracle for padding, keepalive and
out-of-order responses, on every lab DoT variant.

- ``tls-padding 128``: OK when the response carries the padding option (presence only;
  the 468 block is ours alone), so OK <=> padding.response is pass or warn.
- ``keepalive``: OK when the server sent edns-tcp-keepalive, and it prints the value;
  so OK <=> our ``advertised``, and the milliseconds must be equal.
- ``OOOR``: asks getdnsapi.net, then ``400.nNNNN.delay.getdnsapi.net`` and
  getdnsapi.net together, OK when the second answer comes first. Only a resolver that
  serves those names can be judged: a real Unbound whose delay zone is forwarded to a
  slow in-test authority (see part2_lab.py). Against it our pipelining check, given the
  same slow name, must report out-of-order too; on the plain variants getdns cannot
  resolve its names and says WARNING, while ours reports in order.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from dotaudit.probe.base import CheckOptions, ProbeConfig
from dotaudit.probe.runner import run_target
from dotaudit.probe.target import parse_target
from tests.lab.lab import Lab
from tests.lab.procs import LabError
from tests.test_probe.part2_lab import (
    HAVE_GETDNS,
    OOOR_ADDRESS,
    QNAME,
    getdns,
    probe,
    start_slow_unbound,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(not HAVE_GETDNS, reason="getdns_server_mon not installed (getdns-utils)"),
]

VARIANTS = ("padded", "unpadded", "no_keepalive", "short_timeout", "tls12", "expired",
            "expiring", "wrong_host", "self_signed", "untrusted", "intercept")  # fmt: skip
CHECKS = {"padding.response", "keepalive"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_padding_and_keepalive_agree(lab: Lab, variant: str) -> None:
    ours = probe(lab, variant, CHECKS, max_idle_wait=0.5)
    address = lab[variant].address
    padding = getdns(lab, address, "tls-padding", "128", QNAME)
    assert padding.returncode in (0, 2), padding.stdout
    attempt = ours.attempt("padding.response")
    assert attempt is not None
    assert (attempt.status.value in ("pass", "warn")) == (padding.returncode == 0), (
        padding.stdout, attempt)  # fmt: skip
    keepalive = getdns(lab, address, "keepalive", QNAME)
    assert keepalive.returncode in (0, 2), keepalive.stdout
    seen = ours.attempt("keepalive")
    assert seen is not None
    assert seen.evidence["advertised"] == (keepalive.returncode == 0), (keepalive.stdout, seen)
    told = re.search(r"idle timeout now (\d+)ms", keepalive.stdout)
    if told:
        assert int(told.group(1)) == seen.evidence["advertised_ms"]


@pytest.fixture(scope="module")
def slow_unbound(lab: Lab) -> Iterator[str]:
    try:
        authority, proc = start_slow_unbound(lab)
    except (LabError, OSError) as exc:
        pytest.skip(f"cannot start the slow Unbound: {exc}")
    yield OOOR_ADDRESS
    lab.pm.stop(proc)  # type: ignore[arg-type]
    authority.close()


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


@pytest.mark.parametrize("variant", ["padded", "intercept"])
def test_plain_variants_cannot_show_out_of_order(lab: Lab, variant: str) -> None:
    oracle = getdns(lab, lab[variant].address, "OOOR")
    # The lab has no getdnsapi.net: getdns cannot run its test (WARNING, zero answers).
    assert oracle.returncode == 1 and "Zero entries" in oracle.stdout, oracle.stdout
    ours = probe(lab, variant, {"pipelining"})
    attempt = ours.attempt("pipelining")
    assert attempt is not None and attempt.evidence["out_of_order"] is False
