"""Split leak: plaintext DNS while the same client has an established DoT session."""

from __future__ import annotations

from dotaudit.detect.base import Context
from dotaudit.detect.split_leak import SplitLeakDetector
from dotaudit.model.events import Event
from tests import factories as f


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
