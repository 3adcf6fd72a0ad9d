"""The network verdict: clauses in plain words, each with the survey rows behind it.

Oracle: the sentence the issue asks for ("This network blocks DoT to public resolvers by
RST injection (TTL 64 vs 57), lets DoH through, and transparently redirects port 53 to
192.0.2.1."), built here from survey rows that say exactly that.
"""

from __future__ import annotations

from typing import Any

from dotaudit.model.findings import Confidence
from dotaudit.probe.discovery.network_verdict import network_verdict
from dotaudit.probe.discovery.survey import Outcome, SurveyResult, SurveyTarget


def row(address: str, group: str = "public", **outcomes: Outcome) -> SurveyResult:
    target = SurveyTarget(f"resolver {address}", address, "test", group, "dns.test", "dns.test")
    cells = {k: Outcome("not offered") for k in ("dot", "doh", "doq", "plain")}
    cells.update(outcomes)
    return SurveyResult(target, cells)


def injected(ttl: int = 64, ref: int = 57) -> Outcome:
    evidence: dict[str, Any] = {
        "ttl": {"injected": True, "rst_ttl": ttl, "reference_ttls": {"53": ref, "443": ref}}
    }
    return Outcome("blocked", "RST injection", "the RST has another TTL", evidence)


def test_the_sentence_of_the_issue() -> None:
    hijack = Outcome(
        "hijacked",
        "identity differs",
        "port 53 answered by another",
        {"redirected_to": "192.0.2.1", "differences": ["NSID 'a' vs 'b'"]},
    )
    results = [
        row(
            "198.51.100.1",
            dot=injected(),
            doh=Outcome("pass", "open"),
            plain=Outcome("pass", "same resolver"),
        ),
        row("198.51.100.2", dot=injected(), doh=Outcome("pass", "open"), plain=hijack),
    ]
    verdict = network_verdict(results)
    assert verdict.sentence == (
        "This network blocks DoT to public resolvers by RST injection (TTL 64 vs 57), lets "
        "DoH through, and transparently redirects port 53 for 198.51.100.2 to 192.0.2.1 "
        "(NSID 'a' vs 'b')."
    )
    kinds = [(c.transport, c.kind) for c in verdict.clauses]
    assert kinds == [("dot", "blocked"), ("doh", "passes"), ("plain", "hijacked")]
    assert [e["address"] for e in verdict.clauses[0].evidence] == ["198.51.100.1", "198.51.100.2"]
    assert sorted(f.id for f in verdict.findings) == ["DA-NET-001", "DA-NET-004"]


def test_partial_blocking_names_the_resolvers() -> None:
    results = [
        row("198.51.100.1", dot=Outcome("blocked", "dropped")),
        row("198.51.100.2", dot=Outcome("pass", "open")),
    ]
    verdict = network_verdict(results)
    assert [c.text for c in verdict.clauses] == [
        "blocks DoT to 198.51.100.1 by dropping it",
        "lets DoT through to 198.51.100.2",
    ]


def test_mixed_mechanisms_are_listed() -> None:
    results = [
        row("198.51.100.1", dot=Outcome("blocked", "dropped")),
        row("198.51.100.2", dot=Outcome("blocked", "icmp")),
    ]
    [clause] = network_verdict(results).clauses
    assert clause.text == (
        "blocks DoT to public resolvers (198.51.100.1: dropped; 198.51.100.2: icmp)"
    )


def test_sni_blocking_names_the_host() -> None:
    results = [row("198.51.100.1", doh=Outcome("blocked", "SNI filtering"))]
    [clause] = network_verdict(results).clauses
    assert clause.text == (
        "blocks DoH to 198.51.100.1 by SNI (a reset right after the ClientHello naming dns.test)"
    )
    assert network_verdict(results).findings[0].id == "DA-NET-002"


def test_interception_and_suspicious_answers() -> None:
    results = [
        row("198.51.100.1", dot=Outcome("intercepted", "certificate does not chain")),
        row(
            "198.51.100.2",
            dot=Outcome("blocked", "dropped"),
            plain=Outcome("unverified", "answered while unreachable"),
        ),
    ]
    verdict = network_verdict(results)
    texts = [c.text for c in verdict.clauses]
    assert "intercepts DoT to 198.51.100.1 (certificate does not chain)" in texts
    assert "answers port 53 for 198.51.100.2 although nothing else of it answers" in texts
    assert {f.id for f in verdict.findings} == {"DA-NET-001", "DA-NET-005"}


def test_one_silent_resolver_is_medium_confidence_two_are_high() -> None:
    one = network_verdict([row("198.51.100.1", dot=Outcome("blocked", "dropped"))])
    assert one.findings[0].confidence is Confidence.MEDIUM
    two = network_verdict(
        [
            row("198.51.100.1", dot=Outcome("blocked", "dropped")),
            row("198.51.100.2", dot=Outcome("blocked", "dropped")),
        ]
    )
    assert two.findings[0].confidence is Confidence.HIGH
    reset = network_verdict([row("198.51.100.1", dot=Outcome("blocked", "reset"))])
    assert reset.findings[0].confidence is Confidence.HIGH


def test_nothing_tested_says_so() -> None:
    verdict = network_verdict([row("198.51.100.1", dot=Outcome("not tested"))])
    assert verdict.clauses == [] and verdict.findings == []
    assert verdict.sentence.startswith("The survey could test nothing")


def test_designated_resolvers_are_named_as_such() -> None:
    results = [
        row("198.51.100.1", "designated", dot=Outcome("pass", "open")),
        row("198.51.100.2", "designated", dot=Outcome("blocked", "reset")),
        row("198.51.100.3", "designated", dot=Outcome("blocked", "reset")),
    ]
    verdict = network_verdict(results)
    assert verdict.clauses[0].text == "blocks DoT to 198.51.100.2, 198.51.100.3 with TCP resets"
    results = results[1:]
    assert network_verdict(results).clauses[0].text == (
        "blocks DoT to the designated resolvers with TCP resets"
    )


def test_port_53_blocked_is_a_clause_without_a_finding() -> None:
    """A network that keeps its clients on its own resolver by silencing port 53 to the
    others: said in the sentence, but no finding (plaintext DNS withheld is no harm to
    privacy)."""
    results = [
        row("198.51.100.1", plain=Outcome("blocked", "no answer")),
        row("198.51.100.2", plain=Outcome("blocked", "no answer")),
    ]
    verdict = network_verdict(results)
    assert verdict.sentence == "This network blocks port 53 to public resolvers by dropping it."
    assert verdict.findings == []
    results[1] = row("198.51.100.2", plain=Outcome("pass", "same resolver"))
    texts = [c.text for c in network_verdict(results).clauses]
    assert texts == [
        "blocks port 53 to 198.51.100.1 by dropping it",
        "lets port 53 reach the resolvers themselves",
    ]
    icmp = network_verdict([row("198.51.100.1", plain=Outcome("blocked", "icmp"))])
    assert icmp.clauses[0].text == "blocks port 53 to 198.51.100.1 with ICMP unreachables"
