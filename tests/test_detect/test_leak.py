"""Plaintext DNS leak detector: aggregation per client/resolver, stubs, padding, policy."""

from __future__ import annotations

import pytest

from dotaudit.detect import base, leak
from dotaudit.detect.base import Context
from dotaudit.detect.leak import PlaintextLeakDetector
from dotaudit.model.events import Event
from dotaudit.model.findings import Confidence, Severity
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
    monkeypatch.setattr(base, "TRACK_BUDGET", 2)
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


def test_plaintext_row_and_finding_in_full() -> None:
    padded = f.dns_query(ts=10.0, qname="a.example", qtype=28, edns=f.edns(padding=100))
    plain = f.dns_query(ts=11.0, qname="b.example", qtype=None)
    answer = f.dns_response(ts=12.0, qname="a.example")
    detector = run([padded, plain, answer])
    (row,) = detector.sections()["plaintext_dns"]
    assert row == {
        "file": f.FILE,
        "client": f.CLIENT,
        "server": f.SERVER,
        "transport": "udp",
        "port": 53,
        "queries": 2,
        "responses": 1,
        "qnames": ["a.example", "b.example"],
        "qname_count": 2,
        "qtypes": {"AAAA": 1, "none": 1},
        "padded_queries": 1,
        "first_ts": 10.0,
        "last_ts": 12.0,
        "frames": [padded.frame, plain.frame, answer.frame],
        "known_resolver": "Quad9",
        "local_stub": False,
        "internal": False,
    }
    leak, padded_leak = detector.finish()
    assert leak.id == "DA-LEAK-001" and leak.confidence is Confidence.HIGH
    assert leak.evidence == {
        "transport": "udp",
        "port": 53,
        "queries": 2,
        "responses": 1,
        "qnames": ["a.example", "b.example"],
        "qname_count": 2,
        "qtypes": {"AAAA": 1, "none": 1},
        "known_resolver": "Quad9",
        "padded_queries": 1,
    }
    dedup = f"{f.FILE}|{f.CLIENT}|{f.SERVER}|udp|53"
    assert leak.dedup_key == f"DA-LEAK-001|{dedup}"
    assert (leak.client, leak.server, leak.file) == (f.CLIENT, f.SERVER, f.FILE)
    assert (leak.first_ts, leak.last_ts) == (10.0, 12.0)
    assert leak.frames == (padded.frame, plain.frame, answer.frame)
    # Padding in plaintext hides nothing: its own finding, with the padded frames only.
    assert padded_leak.id == "DA-LEAK-004"
    assert padded_leak.evidence == {
        "padded_queries": 1,
        "queries": 2,
        "qnames": ["a.example", "b.example"],
    }
    assert padded_leak.dedup_key == f"DA-LEAK-004|{dedup}"
    assert (padded_leak.client, padded_leak.server, padded_leak.file) == (
        f.CLIENT,
        f.SERVER,
        f.FILE,
    )
    assert (padded_leak.first_ts, padded_leak.last_ts) == (10.0, 12.0)
    assert padded_leak.frames == (padded.frame,)


def test_padded_queries_to_a_local_stub_are_not_flagged() -> None:
    events: list[Event] = [f.dns_query(dst="127.0.0.53", edns=f.edns(padding=10))]
    assert [x.id for x in run(events).finish()] == ["DA-LEAK-003"]


def test_responses_only_pair_notes_that_names_still_crossed() -> None:
    (finding,) = run([f.dns_response(qname="seen.example")]).finish()
    assert finding.evidence["queries"] == 0 and finding.evidence["responses"] == 1
    assert finding.evidence["qnames"] == ["seen.example"]
    assert finding.evidence["note"] == (
        "only responses were captured; the names still crossed the path"
    )
    (one_query,) = run([f.dns_query()]).finish()
    assert "note" not in one_query.evidence


def test_internal_resolver_does_not_stop_later_pairs() -> None:
    policy = Policy(internal_resolvers=frozenset({"10.0.0.53"}))
    events: list[Event] = [f.dns_query(dst="10.0.0.53"), f.dns_query(dst="192.0.2.1")]
    findings = run(events, policy).finish()
    assert [(x.id, x.server) for x in findings] == [("DA-LEAK-001", "192.0.2.1")]


def test_other_port_is_medium_confidence() -> None:
    (finding,) = run([f.dns_query(dport=5353)]).finish()
    assert finding.confidence is Confidence.MEDIUM and finding.evidence["port"] == 5353


def test_rows_sort_by_queries_then_client_then_server() -> None:
    events: list[Event] = [
        f.dns_query(src="10.0.0.9", dst="192.0.2.2"),
        f.dns_query(src="10.0.0.3", dst="192.0.2.2"),
        f.dns_query(src="10.0.0.3", dst="192.0.2.1"),
        f.dns_query(src="10.0.0.9", dst="192.0.2.3"),
        f.dns_query(src="10.0.0.9", dst="192.0.2.3"),
    ]
    rows = run(events).sections()["plaintext_dns"]
    assert [(r["client"], r["server"], r["queries"]) for r in rows] == [
        ("10.0.0.9", "192.0.2.3", 2),
        ("10.0.0.3", "192.0.2.1", 1),
        ("10.0.0.3", "192.0.2.2", 1),
        ("10.0.0.9", "192.0.2.2", 1),
    ]


def test_frame_samples_stop_at_their_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leak, "FRAME_SAMPLE", 3)
    queries = [f.dns_query(edns=f.edns(padding=8)) for _ in range(5)]
    answers = [f.dns_response() for _ in range(2)]
    detector = run([*queries, *answers])
    (row,) = detector.sections()["plaintext_dns"]
    assert row["frames"] == [q.frame for q in queries[:3]]
    assert (row["queries"], row["responses"], row["padded_queries"]) == (5, 2, 5)
    padded_leak = detector.finish()[1]
    assert padded_leak.frames == tuple(q.frame for q in queries[:3])
