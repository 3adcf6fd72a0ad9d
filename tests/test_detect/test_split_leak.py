"""Split leak: plaintext DNS while the same client has an established DoT session."""

from __future__ import annotations

import dataclasses

import pytest

from dotaudit.detect.base import Context
from dotaudit.detect.split_leak import SplitLeakDetector
from dotaudit.model.events import Event
from dotaudit.model.findings import CATALOGUE
from tests import factories as f
from tests.detection import detect


def run(events: list[Event]) -> SplitLeakDetector:
    return f.fed_detector(SplitLeakDetector, events, Context())


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


# The window is the session itself, both ends included (the module docstring): a query
# at the session's first or last packet is during it, a microsecond outside is not.
SESSION_START, SESSION_END = 100.0, 101.0  # dot_session_events: end = start + 1 s


@pytest.mark.parametrize(
    ("query_ts", "split"),
    [
        (SESSION_START - 0.000001, False),
        (SESSION_START, True),
        (SESSION_END, True),
        (SESSION_END + 0.000001, False),
    ],
    ids=["just-before", "at-start", "at-end", "just-after"],
)
def test_split_leak_window_is_the_session_inclusive(query_ts: float, split: bool) -> None:
    session = f.dot_session_events(client_lengths=[147], server_lengths=[487], ts=SESSION_START)
    assert session[-1].end == SESSION_END  # type: ignore[attr-defined]
    query = f.dns_query(ts=query_ts, dst="192.0.2.53", qname="edge.example")
    detected = detect([*session[:-1], query, session[-1]])
    assert [x.id for x in detected.findings if x.id == "DA-LEAK-007"] == (
        ["DA-LEAK-007"] if split else []
    )


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


def test_split_leak_counts_every_query_of_a_long_session() -> None:
    session = _session(100.0)
    queries = [f.dns_query(ts=100.0 + i / 1000) for i in range(250)]
    (finding,) = run([*session[:-1], *queries, session[-1]]).finish()
    assert finding.evidence["plaintext_queries"] == 250


def _ending_at(events: list[Event], end: float) -> list[Event]:
    return [*events[:-1], dataclasses.replace(events[-1], end=end)]


def test_split_leak_counts_a_query_seen_by_two_sessions_once_and_later_ones_too() -> None:
    first = _ending_at(_session(100.0), 101.0)
    second = _ending_at(_session(100.5, cport=40001), 102.0)
    shared = f.dns_query(ts=100.7, qname="both.example")
    later = f.dns_query(ts=101.5, qname="second.example")
    events = [*first[:-1], *second[:-1], shared, later, first[-1], second[-1]]
    (finding,) = run(events).finish()
    assert finding.evidence["plaintext_queries"] == 2
    assert finding.evidence["qnames"] == ["both.example", "second.example"]
