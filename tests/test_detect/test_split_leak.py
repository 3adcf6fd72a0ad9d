"""Split leak: plaintext DNS while the same client has an established DoT session."""

from __future__ import annotations

import pytest

from dotaudit.detect import split_leak
from dotaudit.detect.base import Context
from dotaudit.detect.split_leak import SplitLeakDetector
from dotaudit.model.events import Event
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


def _split_leak(client: str) -> list[Event]:
    session = f.dot_session_events(client=client, client_lengths=[147], server_lengths=[487],
                                   ts=100.0)  # fmt: skip
    return [*session[:-1], f.dns_query(src=client, ts=100.5), session[-1]]


def test_clients_over_the_cap_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    assert split_leak.MAX_CLIENTS == 10_000
    monkeypatch.setattr(split_leak, "MAX_CLIENTS", 1)
    at_cap = run(_split_leak("10.0.0.2"))
    assert len(at_cap.finish()) == 1 and at_cap.caps() == {}
    over = run([*_split_leak("10.0.0.2"), *_split_leak("10.0.0.3")])
    assert [x.client for x in over.finish()] == ["10.0.0.2"]
    assert over.caps() == {"split_leak_clients_full": 1}
