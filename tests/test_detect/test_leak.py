"""Plaintext DNS leak detector: aggregation per client/resolver, stubs, padding, policy."""

from __future__ import annotations

import pytest

from dotaudit.detect import leak
from dotaudit.detect.base import Context
from dotaudit.detect.leak import PlaintextLeakDetector
from dotaudit.model.events import Event
from dotaudit.model.findings import Severity
from dotaudit.model.policy import Policy
from tests import factories as f


def run(events: list[Event], policy: Policy | None = None) -> PlaintextLeakDetector:
    return f.fed_detector(PlaintextLeakDetector, events, Context(policy=policy or Policy()))


def test_queries_aggregate_into_one_finding_per_pair() -> None:
    events: list[Event] = [f.dns_query(ts=10.0 + i, qname=f"n{i % 3}.example") for i in range(30)]
    events.append(f.dns_response(ts=50.0, qname="n0.example"))
    detector = run(events)
    findings = detector.finish()
    assert [x.id for x in findings] == ["DA-LEAK-001"]
    evidence = findings[0].evidence
    assert evidence["queries"] == 30 and evidence["responses"] == 1
    assert evidence["qname_count"] == 3
    assert evidence["qtypes"] == {"A": 30}
    assert findings[0].first_ts == 10.0 and findings[0].last_ts == 50.0
    assert evidence["known_resolver"] == "Quad9"
    row = detector.sections()["plaintext_dns"][0]
    assert row["client"] == f.CLIENT and row["server"] == f.SERVER and row["transport"] == "udp"


def test_tcp_leak_has_its_own_id_and_pair() -> None:
    events: list[Event] = [f.dns_query(), f.dns_query(transport="tcp")]
    ids = sorted(x.id for x in run(events).finish())
    assert ids == ["DA-LEAK-001", "DA-LEAK-002"]


def test_loopback_stub_is_info_unless_policy_treats_it_as_network() -> None:
    query = f.dns_query(dst="127.0.0.53")
    local = run([query]).finish()
    assert [(x.id, x.severity) for x in local] == [("DA-LEAK-003", Severity.INFO)]
    network = run([query], Policy(treat_loopback_as_network=True)).finish()
    assert [x.id for x in network] == ["DA-LEAK-001"]


def test_padding_in_plaintext_flags_a_falling_back_client() -> None:
    padded = f.dns_query(edns=f.edns(padding=83))
    findings = {x.id: x for x in run([padded, f.dns_query()]).finish()}
    assert set(findings) == {"DA-LEAK-001", "DA-LEAK-004"}
    assert findings["DA-LEAK-004"].evidence["padded_queries"] == 1
    assert findings["DA-LEAK-004"].frames == (padded.frame,)


def test_internal_resolver_is_listed_but_not_flagged() -> None:
    detector = run([f.dns_query()], Policy(internal_resolvers=frozenset({f.SERVER})))
    assert detector.finish() == []
    assert detector.sections()["plaintext_dns"][0]["internal"] is True


def test_response_only_capture_still_reports_the_name() -> None:
    """Oracle: zeek/dns53-flip has a lone response; the client is its destination."""
    findings = run([f.dns_response(qname="us.v27.distributed.net")]).finish()
    assert findings[0].client == f.CLIENT and findings[0].server == f.SERVER
    assert findings[0].evidence["qnames"] == ["us.v27.distributed.net"]


def test_mdns_and_non_query_opcodes_are_not_plaintext_leaks() -> None:
    events: list[Event] = [f.dns_query(service="mdns", dport=5353), f.dns_query(opcode=5)]
    assert run(events).finish() == []


def test_samples_are_capped_but_counts_are_exact() -> None:
    events: list[Event] = [f.dns_query(qname=f"name{i}.example") for i in range(500)]
    finding = run(events).finish()[0]
    assert finding.evidence["qname_count"] == 500
    assert len(finding.evidence["qnames"]) == 20
    assert len(finding.frames) == 50


def test_severity_override_from_policy() -> None:
    policy = Policy(severity_overrides={"DA-LEAK-001": Severity.MEDIUM})
    assert run([f.dns_query()], policy).finish()[0].severity is Severity.HIGH  # natural
    found = f.run_detectors([f.dns_query()], policy, only=PlaintextLeakDetector).findings
    assert found[0].severity is Severity.MEDIUM


def test_query_types_past_the_cap_count_as_other(monkeypatch: pytest.MonkeyPatch) -> None:
    assert leak.MAX_QTYPES == 32
    monkeypatch.setattr(leak, "MAX_QTYPES", 2)
    at_cap = run([f.dns_query(qtype=1), f.dns_query(qtype=28), f.dns_query(qtype=1)])
    assert at_cap.finish()[0].evidence["qtypes"] == {"A": 2, "AAAA": 1}
    over = run([f.dns_query(qtype=1), f.dns_query(qtype=28), f.dns_query(qtype=15)])
    assert over.finish()[0].evidence["qtypes"] == {"A": 1, "AAAA": 1, "other": 1}


def test_names_past_the_detectors_budget_are_counted_and_marked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(leak, "TRACK_BUDGET", 2)
    at_cap = run([f.dns_query(qname="a.example"), f.dns_query(qname="b.example", src="10.0.0.9")])
    assert at_cap.caps() == {}
    assert all("qname_count_is_lower_bound" not in x.evidence for x in at_cap.finish())
    names = ("a.example", "b.example", "c.example", "c.example")
    over = run([f.dns_query(qname=name) for name in names])
    (finding,) = over.finish()
    assert over.caps() == {"plaintext_names_untracked": 2}  # c.example seen twice, untracked
    assert finding.evidence["qname_count"] == 2
    assert finding.evidence["qname_count_is_lower_bound"] is True
    assert finding.evidence["qnames"] == ["a.example", "b.example", "c.example"]  # listed once
    (row,) = over.sections()["plaintext_dns"]
    assert row["qname_count_is_lower_bound"] is True


def test_pairs_over_the_cap_are_a_counted_anomaly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leak, "MAX_PAIRS", 1)
    detector = run([f.dns_query(), f.dns_query(src="10.0.0.9"), f.dns_query(src="10.0.0.9")])
    assert detector.caps() == {"plaintext_pairs_full": 2}
