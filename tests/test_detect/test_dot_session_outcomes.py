"""DoT session outcomes detector: per-connection rows and aggregated findings."""

from __future__ import annotations

import dataclasses

import pytest

from dotaudit.detect import dot_session_outcomes
from dotaudit.detect.base import Context
from dotaudit.detect.dot_session_outcomes import DotSessionOutcomesDetector
from dotaudit.model.events import ConnectionSeen, Event
from dotaudit.model.policy import ApprovedResolver, Policy
from tests import factories as f
from tests.detection import detect


def run(events: list[Event], policy: Policy | None = None) -> DotSessionOutcomesDetector:
    return f.fed_detector(DotSessionOutcomesDetector, events, Context(policy=policy or Policy()))


def test_padded_tls13_session_row() -> None:
    """Oracle: the issue's stubby numbers, 147 = 128 + 19 and 487 = 468 + 19 (RFC 8467)."""
    events = f.dot_session_events(client_lengths=[147, 147, 147], server_lengths=[487, 487, 487])
    detector = run(events)
    findings = detector.finish()
    row = detector.sections()["dot_sessions"][0]
    assert row["outcome"] == "established"
    assert row["sni"] == "dns.quad9.net" and row["version"] == "TLSv1.3"
    assert row["queries_est"] == 3
    assert row["padding"]["verdict"] == "padded"
    assert row["alpn"] == "dot"
    assert [x.id for x in findings] == ["DA-DOT-006"]


def test_tls12_is_low_and_tls11_is_a_finding() -> None:
    tls12 = f.dot_session_events(version="TLSv1.2", client_lengths=[80], server_lengths=[90])
    tls11 = f.dot_session_events(
        version="TLSv1.1", client_lengths=[80], server_lengths=[90], server="198.51.100.9"
    )
    ids = sorted(x.id for x in run([*tls12, *tls11]).finish())
    assert ids == ["DA-DOT-002", "DA-DOT-003", "DA-DOT-006", "DA-DOT-006"]


def test_no_sni_is_noted() -> None:
    events = f.dot_session_events(sni=None, client_lengths=[147], server_lengths=[487])
    assert "DA-DOT-004" in {x.id for x in run(events).finish()}


def test_failures_are_grouped_with_their_modes() -> None:
    events: list[Event] = [
        f.connection(outcome="syn_unanswered", syn_retransmits=2, handshake_seen=False),
        f.connection(outcome="refused", handshake_seen=False),
        f.connection(outcome="icmp_rejected", icmp="admin-prohibited", handshake_seen=False),
    ]
    detector = run(events)
    findings = detector.finish()
    assert [x.id for x in findings] == ["DA-DOT-001"]
    evidence = findings[0].evidence
    assert evidence["failures"] == {"syn_unanswered": 1, "reset": 1, "icmp_rejected": 1}
    assert evidence["syn_retransmits"] == 2
    assert evidence["icmp"] == ["admin-prohibited"]


def test_strict_client_abort_after_tls13_server_flight() -> None:
    events = f.dot_session_events(client_lengths=[], server_lengths=[], outcome="closed_rst")
    row = run(events).sections()["dot_sessions"][0]
    assert row["outcome"] == "aborted_after_server_hello"
    assert row["queries_est"] == 0


def test_unapproved_resolver_under_policy() -> None:
    policy = Policy(approved_dot=(ApprovedResolver("203.0.113.53"),))
    events = f.dot_session_events(client_lengths=[147], server_lengths=[487])
    assert "DA-POLICY-001" in {x.id for x in run(events, policy).finish()}


def test_mid_stream_sessions_are_rows_but_not_failures() -> None:
    conn = f.connection(outcome="closed_rst", mid_stream=True, handshake_seen=False)
    detector = run([conn])
    assert detector.finish() == []
    assert detector.sections()["dot_sessions"][0]["outcome"] == "mid_stream"


def test_reset_with_a_foreign_ttl_is_marked_injected() -> None:
    """Oracle: the lab's two-hop path, where the router's RST has TTL 64 and the server's
    own packets arrive with TTL 63 (tests/lab/netns.py, pcaps/09-office)."""
    plain = f.connection(dport=53, outcome="closed_fin", server_ttl=63, sport=40100)
    refused = f.connection(outcome="refused", handshake_seen=False, rst_ttl=64, sport=40101)
    detector = run([plain, refused])
    findings = detector.finish()
    evidence = findings[0].evidence
    assert evidence["reset_injected"] is True
    assert evidence["reset_ttl"] == [64] and evidence["server_ttls"] == [63]
    row = detector.sections()["dot_sessions"][0]
    assert row["reset_injected"] is True
    assert row["close_reason"] == "never connected: SYN answered by RST"


def test_reset_with_the_servers_own_ttl_is_not_marked() -> None:
    plain = f.connection(dport=53, outcome="closed_fin", server_ttl=64, sport=40100)
    refused = f.connection(outcome="refused", handshake_seen=False, rst_ttl=64, sport=40101)
    detector = run([plain, refused])
    assert "reset_injected" not in detector.finish()[0].evidence
    assert detector.sections()["dot_sessions"][0]["reset_injected"] is False


@pytest.mark.parametrize(
    ("duration", "outcome", "finding"),
    [
        (4.999999, "aborted_after_server_hello", "DA-DOT-001"),
        (5.0, "established", "DA-DOT-006"),
    ],
)
def test_abort_after_the_server_flight_means_within_five_seconds(
    duration: float, outcome: str, finding: str
) -> None:
    # A TLS 1.3 client that sends nothing after the server's flight and closes at once is
    # refusing the certificate; one that stays 5 s or more was idle, not refusing.
    *head, conn = f.dot_session_events(client_lengths=[], server_lengths=[], outcome="closed_rst")
    assert isinstance(conn, ConnectionSeen)
    events = [*head, dataclasses.replace(conn, end=conn.start + duration)]
    detected = detect(events)
    assert [row["outcome"] for row in detected.sections["dot_sessions"]] == [outcome]
    assert {x.id for x in detected.findings} & {"DA-DOT-001", "DA-DOT-006"} == {finding}


def _failures(clients: int) -> list[Event]:
    return [
        f.connection(src=f"10.2.0.{i}", outcome="syn_unanswered", handshake_seen=False)
        for i in range(clients)
    ]


def test_caps_are_the_documented_ones() -> None:
    assert dot_session_outcomes.MAX_SESSIONS == 10_000
    assert dot_session_outcomes.MAX_GROUPS == 10_000
    assert dot_session_outcomes.MAX_SERVERS == 10_000


def test_rows_stop_at_the_cap_and_the_findings_count_every_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dot_session_outcomes, "MAX_SESSIONS", 2)
    at_cap = run(_failures(2))
    assert len(at_cap.sections()["dot_sessions"]) == 2 and at_cap.caps() == {}
    over = run(_failures(3))
    findings = over.finish()
    assert len(over.sections()["dot_sessions"]) == 2
    assert over.caps() == {"dot_session_rows_full": 1}
    assert len(findings) == 3  # the third session still makes its finding
    assert {x.evidence["sessions_not_listed"] for x in findings} == {1}


def test_server_ttl_table_over_the_cap_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dot_session_outcomes, "MAX_SERVERS", 2)
    flows = [f.connection(dst=f"198.51.100.{i}", server_ttl=57) for i in range(3)]
    assert run(flows[:2]).caps() == {}
    assert run(flows).caps() == {"dot_server_ttl_table_full": 1}


def test_findings_list_the_lowest_frames_of_all_sessions() -> None:
    """The frames come from every session, not from the rows kept, lowest first."""
    events = [
        f.connection(outcome="refused", handshake_seen=False, first_frame=900 - i * 10,
                     last_frame=901 - i * 10, frame=900 - i * 10)
        for i in range(40)
    ]  # fmt: skip
    (finding,) = run(events).finish()
    expected = sorted({frame for i in range(40) for frame in (900 - i * 10, 901 - i * 10)})
    assert list(finding.frames) == expected[:50]
