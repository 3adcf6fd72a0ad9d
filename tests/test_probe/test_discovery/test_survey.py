"""The survey's cells: how a failed connection is classified, and how port 53 is judged
against the encrypted paths and the system resolvers.

Oracles: the transport's ProbeError kinds and phases (connect refused is a RST to the
SYN, a reset in the handshake came after the ClientHello), RFC 5001/RFC 4892 identities;
the lab (real Unbound, dnsdist, DoQ server) for whole surveys.
"""

from __future__ import annotations

import pytest

from dotaudit.probe.base import ProbeConfig
from dotaudit.probe.discovery.identity import Identity
from dotaudit.probe.discovery.survey import (
    MAX_CONNECTIONS,
    Outcome,
    SurveyResult,
    SurveyTarget,
    _failure,
    judge_plain,
    run_survey,
)
from dotaudit.probe.transport import ProbeError
from tests.lab.lab import DOH_ADDRESS, DOQ_ADDRESS, Lab
from tests.lab.pki import HOSTNAME
from tests.test_probe.lab_probe import QNAME

TARGET = SurveyTarget("r", "198.51.100.1", "test", "public", "dns.test", "dns.test")


@pytest.mark.parametrize(
    ("phase", "kind", "status", "how"),
    [
        ("connect", "timeout", "blocked", "dropped"),
        ("connect", "refused", "blocked", "reset"),
        ("connect", "icmp", "blocked", "icmp"),
        ("handshake", "reset", "blocked", "reset after ClientHello"),
        ("handshake", "closed", "blocked", "closed after ClientHello"),
        ("handshake", "timeout", "blocked", "stalled after ClientHello"),
        ("handshake", "verify", "intercepted", "certificate does not chain"),
        ("handshake", "alert", "failed", "alert"),
        ("", "policy", "not tested", "outside allowed networks"),
        ("", "timeout", "blocked", "dropped"),
    ],
)
def test_failures_become_cells(phase: str, kind: str, status: str, how: str) -> None:
    outcome = _failure(ProbeError(kind, "why", phase=phase), "DoT to x")
    assert (outcome.status, outcome.how) == (status, how)
    assert outcome.evidence["error_kind"] == kind


def result(plain: Identity | None, **encrypted: Outcome) -> SurveyResult:
    cells = {k: Outcome("not offered") for k in ("dot", "doh", "doq")}
    cells.update(encrypted)
    cells["plain"] = Outcome("answered", "answered", "", {}, plain)
    return SurveyResult(TARGET, cells)


def test_port_53_telling_the_same_identity_passes() -> None:
    found = result(Identity("ns1"), dot=Outcome("pass", "open", "", {}, Identity("ns1")))
    judge_plain(found, {})
    assert (found.outcomes["plain"].status, found.outcomes["plain"].how) == (
        "pass",
        "same resolver",
    )


def test_port_53_telling_another_identity_is_hijacked_and_traced_to_the_system() -> None:
    found = result(Identity("hotel"), dot=Outcome("pass", "open", "", {}, Identity("real")))
    judge_plain(found, {"192.0.2.1": Identity("hotel")})
    plain = found.outcomes["plain"]
    assert (plain.status, plain.evidence["redirected_to"]) == ("hijacked", "192.0.2.1")
    assert plain.evidence["differences"] == ["NSID 'hotel' over port 53, 'real' over DoT"]


def test_without_an_encrypted_path_the_system_identity_still_shows_a_redirect() -> None:
    found = result(Identity("hotel"), dot=Outcome("blocked", "dropped"))
    judge_plain(found, {"192.0.2.1": Identity("hotel")})
    assert found.outcomes["plain"].how == "answered by the system resolver"
    # ...but a system resolver answering its own port 53 is no redirect.
    own = SurveyResult(
        SurveyTarget("r", "192.0.2.1", "t", "designated", "dns.test", system=True),
        {
            "dot": Outcome("blocked", "dropped"),
            "plain": Outcome("answered", "answered", "", {}, Identity("hotel")),
        },
    )
    judge_plain(own, {"192.0.2.1": Identity("hotel")})
    assert own.outcomes["plain"].status == "unverified"


def test_answers_where_every_encrypted_port_is_silent_are_suspicious() -> None:
    found = result(
        Identity(None), dot=Outcome("blocked", "dropped"), doh=Outcome("blocked", "dropped")
    )
    judge_plain(found, {})
    assert found.outcomes["plain"].how == "answered while unreachable"
    # One encrypted port that answers (even blocked by a reset) makes it not silent.
    found = result(
        Identity(None), dot=Outcome("blocked", "dropped"), doh=Outcome("blocked", "reset")
    )
    judge_plain(found, {})
    assert found.outcomes["plain"].how == "not compared"


@pytest.mark.lab
def test_a_lab_survey_stays_within_three_connections(lab: Lab) -> None:
    """Every lab service in one survey: DoT at the padded Unbound, DoH at dnsdist, DoQ at
    the DoQ server, each as its own resolver; the intercepting dnsdist and the untrusted
    Unbound as DoT resolvers whose certificates do not chain."""
    targets = [
        SurveyTarget("padded", lab["padded"].address, "t", "public", HOSTNAME),
        SurveyTarget("doh", DOH_ADDRESS, "t", "public", doh_host=HOSTNAME),
        SurveyTarget("doq", DOQ_ADDRESS, "t", "public", doq_name=HOSTNAME),
        SurveyTarget("intercept", lab["intercept"].address, "t", "public", HOSTNAME),
        SurveyTarget("wrong name", lab["wrong_host"].address, "t", "public", HOSTNAME),
    ]
    config = ProbeConfig(ca_file=str(lab.ca), qname=QNAME, timeout=2.0)
    results = {r.target.label: r for r in run_survey(targets, config)}
    cells = {
        label: {k: (o.status, o.how) for k, o in r.outcomes.items()} for label, r in results.items()
    }
    assert cells["padded"]["dot"] == ("pass", "open")
    # Unbound answers id.server and hostname.bind with its host name over 53 and over DoT.
    assert cells["padded"]["plain"] == ("pass", "same resolver")
    assert cells["doh"]["doh"] == ("pass", "open")
    assert cells["doq"]["doq"] == ("pass", "open")
    assert cells["intercept"]["dot"] == ("intercepted", "certificate does not chain")
    assert cells["wrong name"]["dot"] == ("intercepted", "certificate names another")
    for found in results.values():
        stats = found.connections
        assert stats["tcp_connects"] + stats["quic_handshakes"] <= MAX_CONNECTIONS, stats
