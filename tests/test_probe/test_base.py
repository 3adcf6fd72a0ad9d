"""The check context: which name authenticates a target (RFC 8310 §6.1: the one the
user gave for it, else --name, else the host name it was given as), per-operation
deadlines inside the check's, and the shared handshake (strict first, then unverified
so that the certificate can still be judged)."""

from __future__ import annotations

import pytest

from dotaudit.probe.base import CheckContext, ProbeConfig
from dotaudit.probe.target import parse_target
from dotaudit.probe.transport import Deadline, ProbeError
from tests.lab.lab import Lab


@pytest.mark.parametrize(
    ("target", "name", "expected"),
    [
        ("dns.test@192.0.2.1", "other.test", "dns.test"),  # NAME@ wins
        ("192.0.2.1", "other.test", "other.test"),  # then --name
        ("192.0.2.1", None, None),  # an address alone names nothing
    ],
)
def test_authentication_name_precedence(
    target: str, name: str | None, expected: str | None
) -> None:
    ctx = CheckContext(parse_target(target), ProbeConfig(name=name))
    assert ctx.name == expected and ctx.sni == expected


def test_host_name_target_names_itself() -> None:
    ctx = CheckContext(parse_target("localhost").with_address("127.0.0.1", ("127.0.0.1",)),
                       ProbeConfig())  # fmt: skip
    assert ctx.name == "localhost"


def test_unresolved_target_has_no_address() -> None:
    with pytest.raises(ProbeError) as caught:
        CheckContext(parse_target("localhost"), ProbeConfig()).address  # noqa: B018
    assert caught.value.kind == "resolve"


def test_operation_deadline_is_the_timeout_inside_the_checks() -> None:
    ctx = CheckContext(parse_target("192.0.2.1"), ProbeConfig(timeout=3.0))
    ctx.deadline = Deadline(1.0)
    assert ctx.op().seconds <= 1.0  # clipped by the check's budget
    ctx.deadline = Deadline(60.0)
    assert 2.9 < ctx.op().seconds <= 3.0
    assert ctx.op(0.5).seconds <= 0.5


def test_padded_query_is_a_multiple_of_128() -> None:
    # RFC 8467 §4.1: clients SHOULD pad queries to a multiple of 128 octets.
    query = CheckContext(parse_target("192.0.2.1"), ProbeConfig()).make_query(pad=128)
    assert len(query.to_wire()) % 128 == 0


@pytest.mark.lab
def test_refused_chain_falls_back_to_an_unverified_handshake(lab: Lab) -> None:
    resolver = lab["untrusted"]
    ctx = CheckContext(parse_target(f"{resolver.hostname}@{resolver.address}"),
                       ProbeConfig(ca_file=str(lab.ca), timeout=2.0))  # fmt: skip
    try:
        info = ctx.handshake()
        assert info.connection is not None and not info.verified
        assert "certificate verification failed" in (info.verify_error or "")
        assert info.chain and info.verified_chain == []
        assert ctx.handshake() is info  # made once, shared by every check
        assert ctx.net.stats.tls_handshakes == 2
    finally:
        ctx.close()
