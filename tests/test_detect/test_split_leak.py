"""Split leak: plaintext DNS while the same client has an established DoT session."""

from __future__ import annotations

from dotaudit.detect.base import Context
from dotaudit.detect.split_leak import SplitLeakDetector
from dotaudit.model.events import Event
from dotaudit.model.findings import CATALOGUE, Severity
from dotaudit.model.policy import Policy
from tests import factories as f


def run(events: list[Event]) -> SplitLeakDetector:
    detector = SplitLeakDetector(Context())
    for event in events:
        detector.on_event(event)
    return detector


def test_plaintext_during_established_session_is_a_split_leak() -> None:
    session = f.dot_session_events(client_lengths=[147, 147], server_lengths=[487, 487], ts=100.0)
    leak = f.dns_query(ts=100.5, dst="192.0.2.53", qname="bypass.example")
    findings = run([*session[:-1], leak, session[-1]]).finish()
    assert [x.id for x in findings] == ["DA-LEAK-007"]
    evidence = findings[0].evidence
    assert evidence["dot_servers"] == [f.SERVER]
    assert evidence["plaintext_servers"] == ["192.0.2.53"]
    assert evidence["qnames"] == ["bypass.example"]
    assert findings[0].frames == (leak.frame,)


def test_plaintext_outside_the_session_is_not_a_split_leak() -> None:
    session = f.dot_session_events(client_lengths=[147], server_lengths=[487], ts=100.0)
    before = f.dns_query(ts=50.0)
    assert run([before, *session]).finish() == []


def test_failed_session_is_not_a_working_one() -> None:
    session = f.dot_session_events(ts=100.0, server_hello_seen=False, outcome="closed_rst")
    query = f.dns_query(ts=100.5)
    assert run([*session[:-1], query, session[-1]]).finish() == []


def _session(ts: float, **kw: object) -> list[Event]:
    return f.dot_session_events(client_lengths=[147], server_lengths=[487], ts=ts, **kw)  # type: ignore[arg-type]


def test_split_leak_finding_in_full() -> None:
    first = _session(100.0)
    second = _session(100.2, cport=40001)  # overlaps the first: its queries count once
    queries = [
        f.dns_query(ts=100.3, dst="192.0.2.53", qname="a.example"),
        f.dns_query(ts=100.4, dst="192.0.2.54", qname=None),
        f.dns_query(ts=100.6, dst="192.0.2.53", qname="a.example"),
    ]
    events = [*first[:-1], *second[:-1], *queries, first[-1], second[-1]]
    (finding,) = run(events).finish()
    assert finding.evidence == {
        "dot_servers": [f.SERVER],
        "plaintext_servers": ["192.0.2.53", "192.0.2.54"],
        "plaintext_queries": 3,
        "qnames": ["a.example"],
        "qname_count": 1,
    }
    assert finding.server == "192.0.2.53, 192.0.2.54"
    assert finding.client == f.CLIENT and finding.file == f.FILE
    assert finding.dedup_key == f"DA-LEAK-007|{f.FILE}|{f.CLIENT}"
    assert (finding.first_ts, finding.last_ts) == (100.3, 100.6)
    assert finding.frames == tuple(q.frame for q in queries)
    assert finding.severity is CATALOGUE["DA-LEAK-007"].severity


def test_split_leak_severity_override() -> None:
    policy = Policy(severity_overrides={"DA-LEAK-007": Severity.LOW})
    session = _session(100.0)
    detector = SplitLeakDetector(Context(policy=policy))
    for event in [*session[:-1], f.dns_query(ts=100.5), session[-1]]:
        detector.on_event(event)
    (finding,) = detector.finish()
    assert finding.severity is Severity.LOW


def test_split_leak_counts_every_query_of_a_long_session() -> None:
    session = _session(100.0)
    queries = [f.dns_query(ts=100.0 + i / 1000) for i in range(250)]
    (finding,) = run([*session[:-1], *queries, session[-1]]).finish()
    assert finding.evidence["plaintext_queries"] == 250


def test_split_leak_counts_a_query_seen_by_two_sessions_once_and_later_ones_too() -> None:
    first = _session(100.0)
    second = _session(100.5, cport=40001)
    first = [*first[:-1], f.connection(**{**_fields(first[-1]), "end": 101.0})]
    second = [*second[:-1], f.connection(**{**_fields(second[-1]), "end": 102.0})]
    shared = f.dns_query(ts=100.7, qname="both.example")
    later = f.dns_query(ts=101.5, qname="second.example")
    events = [*first[:-1], *second[:-1], shared, later, first[-1], second[-1]]
    (finding,) = run(events).finish()
    assert finding.evidence["plaintext_queries"] == 2
    assert finding.evidence["qnames"] == ["both.example", "second.example"]


def _fields(event: Event) -> dict[str, object]:
    import dataclasses

    return {field.name: getattr(event, field.name) for field in dataclasses.fields(event)}
