"""DoT session outcomes detector: per-connection rows and aggregated findings."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from dotaudit.detect import dot_session_outcomes
from dotaudit.detect.base import Context
from dotaudit.detect.dot_session_outcomes import DotSessionOutcomesDetector
from dotaudit.model.events import ConnectionSeen, Event, TlsClientHelloSeen, TlsServerHelloSeen
from dotaudit.model.findings import Confidence
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


@pytest.mark.parametrize(
    ("rst_ttl", "injected"), [(0, False), (1, True), (254, True), (255, False)]
)
def test_server_ttls_are_remembered_from_the_lowest_to_the_highest(
    rst_ttl: int, injected: bool
) -> None:
    """TTL is one byte: the server's own 0 and 255 are each told from their neighbours."""
    sent = [
        f.connection(dport=53, outcome="closed_fin", server_ttl=ttl, sport=40100 + n)
        for n, ttl in enumerate((255, 0, 255))
    ]
    refused = f.connection(outcome="refused", handshake_seen=False, rst_ttl=rst_ttl, sport=40200)
    detector = run([*sent, refused])
    evidence = detector.finish()[0].evidence
    assert evidence.get("reset_injected", False) is injected
    if injected:
        assert evidence["server_ttls"] == [0, 255]
    assert detector.shared_facts() == {f.SERVER: {0, 255}}


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
    assert dot_session_outcomes.MAX_SESSIONS == 2_000
    assert dot_session_outcomes.MAX_GROUPS == 5_000
    assert dot_session_outcomes.MAX_SERVERS == 10_000


def test_rows_stop_at_the_cap_and_the_findings_count_every_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dot_session_outcomes, "MAX_SESSIONS", 2)
    at_cap = run(_failures(2))
    assert len(at_cap.sections()["dot_sessions"]) == 2 and at_cap.caps() == {}
    over = run(_failures(4))
    findings = over.finish()
    assert len(over.sections()["dot_sessions"]) == 2
    assert over.caps() == {"dot_session_rows_full": 2}
    assert len(findings) == 4  # the sessions past the cap still make their findings
    assert {x.evidence["sessions_not_listed"] for x in findings} == {2}


def test_totals_count_every_session_by_outcome_past_the_table_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dot_session_outcomes, "MAX_SESSIONS", 2)
    detector = run([*_failures(3), *_sessions_with_names(2)])  # the established ones last
    sections = detector.sections()
    assert [row["outcome"] for row in sections["dot_sessions"]] == ["syn_unanswered"] * 2
    assert sections["dot_session_totals"] == [
        {"outcome": "established", "sessions": 2},
        {"outcome": "syn_unanswered", "sessions": 3},
    ]


def test_server_ttl_table_over_the_cap_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dot_session_outcomes, "MAX_SERVERS", 2)
    flows = [f.connection(dst=f"198.51.100.{i}", server_ttl=57) for i in range(3)]
    assert run(flows[:2]).caps() == {}
    assert run(flows).caps() == {"dot_server_ttl_table_full": 1}


def _sessions_with_names(count: int) -> list[Event]:
    """``count`` established sessions of one client and server, each with an SNI and a
    JA4 of its own."""
    events: list[Event] = []
    for i in range(count):
        hello, *rest = f.dot_session_events(
            sni=f"dns{i}.example",
            cport=40100 + i,
            ts=f.TS + i,
            client_lengths=[147],
            server_lengths=[487],
        )
        assert isinstance(hello, TlsClientHelloSeen)
        events += [dataclasses.replace(hello, ja4=f"t13d1714h2_{i:012x}_3d5424432f57"), *rest]
    return events


def test_findings_list_snis_and_ja4s_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    assert dot_session_outcomes.MAX_NAMES == 100
    monkeypatch.setattr(dot_session_outcomes, "MAX_NAMES", 2)
    listed_snis = ["dns0.example", "dns1.example"]
    listed_ja4s = [f"t13d1714h2_{i:012x}_3d5424432f57" for i in range(2)]
    at_cap_run = run(_sessions_with_names(2))
    (at_cap,) = at_cap_run.finish()
    assert (at_cap.evidence["sni"], at_cap.evidence["ja4"]) == (listed_snis, listed_ja4s)
    assert "names_not_listed" not in at_cap.evidence
    assert "dot_session_names_full" not in at_cap_run.caps()
    over_run = run(_sessions_with_names(3))
    (over,) = over_run.finish()
    assert over.evidence["sessions"] == 3  # the third session is counted, its names not listed
    assert (over.evidence["sni"], over.evidence["ja4"]) == (listed_snis, listed_ja4s)
    # ... and the cut is said: its SNI and its JA4, in the finding and among the caps.
    assert over.evidence["names_not_listed"] == 2
    assert over_run.caps()["dot_session_names_full"] == 2
    # A name already listed is no cut.
    again = run([*_sessions_with_names(2), *_sessions_with_names(2)])
    assert "dot_session_names_full" not in again.caps()


def _failures_with_alerts(alerts: list[str]) -> list[Event]:
    """One session per alert name, each ended by that fatal alert from the server."""
    events: list[Event] = []
    for i, name in enumerate(alerts):
        *handshake, conn = f.dot_session_events(
            server_hello_seen=False, cport=40100 + i, ts=f.TS + i
        )
        alert = f.alert(dport=40100 + i, ts=f.TS + i + 0.5, description_name=name)
        events += [*handshake, alert, conn]
    return events


def test_failure_findings_list_alerts_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dot_session_outcomes, "MAX_NAMES", 2)
    at_cap_run = run(_failures_with_alerts(["handshake_failure", "bad_certificate"]))
    (at_cap,) = at_cap_run.finish()
    assert at_cap.evidence["alerts"] == ["bad_certificate", "handshake_failure"]
    assert "names_not_listed" not in at_cap.evidence
    assert "dot_session_names_full" not in at_cap_run.caps()
    names = ["handshake_failure", "bad_certificate", "unknown_ca", "protocol_version"]
    over_run = run(_failures_with_alerts(names))
    (over,) = over_run.finish()
    assert over.evidence["failures"] == {"tls_alert": 4}
    assert over.evidence["alerts"] == ["bad_certificate", "handshake_failure"]
    # One SNI is listed for all four; the two alerts past the cap are the cut.
    assert over.evidence["names_not_listed"] == 2
    assert over_run.caps()["dot_session_names_full"] == 2


def test_a_session_still_counts_in_its_groups_that_exist_when_the_group_table_is_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dot_session_outcomes, "MAX_GROUPS", 2)
    # A failed session without SNI opens DA-DOT-001 and DA-DOT-004 and fills the table.
    failed = f.dot_session_events(client_lengths=[], server_lengths=[], sni=None, cport=40001)
    # An established one without SNI finds no room for DA-DOT-006, yet DA-DOT-004 exists.
    established = f.dot_session_events(
        client_lengths=[147], server_lengths=[487], sni=None, cport=40002, ts=f.TS + 10
    )
    detector = run([*failed, *established])
    findings = {x.id: x for x in detector.finish()}
    assert set(findings) == {"DA-DOT-001", "DA-DOT-004"}
    assert findings["DA-DOT-004"].evidence["sessions"] == 2
    assert findings["DA-DOT-004"].evidence["outcomes"] == {
        "aborted_after_server_hello": 1,
        "established": 1,
    }
    assert detector.caps()["dot_session_groups_full"] == 1


def test_a_reset_after_a_tls_alert_is_not_judged_as_injected() -> None:
    # Only a reset that ended the session can be injected; an RST that follows the
    # server's own fatal alert is the server's, whatever its TTL.
    plain = f.connection(dport=53, server_ttl=57, sport=40001)
    *handshake, conn = f.dot_session_events(server_hello_seen=False, cport=40002)
    assert isinstance(conn, ConnectionSeen)
    reset = dataclasses.replace(conn, outcome="closed_rst", rst_ttl=250)
    detector = run([plain, *handshake, f.alert(dport=40002), reset])
    (finding,) = detector.finish()
    assert finding.evidence["failures"] == {"tls_alert": 1}
    assert "reset_injected" not in finding.evidence
    assert "reset_ttl" not in finding.evidence and "note" not in finding.evidence
    (row,) = detector.sections()["dot_sessions"]
    assert (row["outcome"], row["reset_injected"]) == ("tls_alert", None)


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


def test_session_row_holds_every_fact_of_the_connection() -> None:
    """Every field of a dot_sessions row, from the events the test built (the oracle)."""
    leaf = f.certificate(position=0)
    chain = f.certificate(position=1, subject="CN=Test CA,O=Test", spki_sha256="B" * 43 + "=")
    events = f.dot_session_events(
        client_lengths=[147, 147], server_lengths=[487, 487], certificates=[chain, leaf]
    )
    hello, server_hello, conn = events[0], events[1], events[-1]
    assert isinstance(hello, TlsClientHelloSeen) and isinstance(conn, ConnectionSeen)
    assert isinstance(server_hello, TlsServerHelloSeen)
    detector = run(events)
    row = detector.sections()["dot_sessions"][0]
    padding = row.pop("padding")
    assert padding["verdict"] == "padded" and padding["client_records"] == 2
    assert row == {
        "file": f.FILE,
        "client": f.CLIENT,
        "sport": 40000,
        "server": f.SERVER,
        "dport": 853,
        "sni": "dns.quad9.net",
        "alpn": "dot",
        "alpn_offered": ["dot"],
        "version": "TLSv1.3",
        "cipher": "TLS_AES_256_GCM_SHA384",
        "ja4": hello.ja4,
        "ja3": hello.ja3,
        "ech": False,
        "outcome": "established",
        "alert": None,
        "tcp_outcome": "closed_fin",
        "syn_retransmits": 0,
        "icmp": None,
        "start": conn.start,
        "end": conn.end,
        "duration_s": 1.0,
        "queries_est": 2,
        "close_reason": "FIN by client",
        "rst_ttl": None,
        "server_ttl": None,
        "certificate": {
            "subject": leaf.subject,
            "issuer": leaf.issuer,
            "not_after": leaf.not_after,
            "spki_sha256": leaf.spki_sha256,
        },
        "frames": sorted({conn.first_frame, hello.frame, server_hello.frame, conn.last_frame}),
        "reset_injected": None,
    }


def test_session_row_alpn_falls_back_to_the_offer_and_alert_is_the_first_fatal() -> None:
    events = f.dot_session_events(alpn=("dot", "h2"), server_hello_seen=False)
    conn = events[-1]
    warning = f.alert(level=1, description=0, description_name="close_notify")
    fatal = f.alert(description=42, description_name="bad_certificate")
    later = f.alert(description=40, description_name="handshake_failure")
    row = run([*events[:-1], warning, fatal, later, conn]).sections()["dot_sessions"][0]
    assert row["alpn"] == ["dot", "h2"] and row["alpn_offered"] == ["dot", "h2"]
    assert row["alert"] == "bad_certificate"
    assert row["outcome"] == "tls_alert" and row["version"] is None and row["cipher"] is None


def test_session_row_without_a_hello_has_empty_handshake_facts() -> None:
    conn = f.connection(outcome="syn_unanswered", syn_retransmits=3, handshake_seen=False)
    row = run([conn]).sections()["dot_sessions"][0]
    assert (row["sni"], row["alpn"], row["alpn_offered"], row["ja4"], row["ja3"]) == (
        None,
        None,
        [],
        None,
        None,
    )
    assert row["ech"] is False and row["certificate"] is None
    assert row["syn_retransmits"] == 3 and row["tcp_outcome"] == "syn_unanswered"


@pytest.mark.parametrize(
    ("connection", "reason"),
    [
        (
            {"outcome": "syn_unanswered", "syn_retransmits": 2},
            "never connected: SYN unanswered (2 retransmits)",
        ),
        ({"outcome": "refused"}, "never connected: SYN answered by RST"),
        (
            {"outcome": "icmp_rejected", "icmp": "admin-prohibited"},
            "never connected: ICMP admin-prohibited",
        ),
        ({"outcome": "icmp_rejected"}, "never connected: ICMP error"),
        ({"outcome": "closed_fin", "closed_by": "server"}, "FIN by server"),
        ({"outcome": "closed_rst", "closed_by": "client"}, "RST by client"),
        ({"outcome": "closed_rst", "closed_by": None}, "RST by unknown side"),
        (
            {"outcome": "established", "ended_by": "idle_timeout"},
            "idle (no packets until the flow expired)",
        ),
        (
            {"outcome": "established", "ended_by": "capture_end"},
            "still open at the end of the capture",
        ),
        (
            {"outcome": "established", "ended_by": "evicted"},
            "evicted from the flow table (memory cap) while still open",
        ),
        ({"outcome": "established", "ended_by": "close"}, "established"),
    ],
)
def test_close_reason_names_how_the_connection_ended(
    connection: dict[str, Any], reason: str
) -> None:
    conn = f.connection(handshake_seen=False, **connection)
    assert run([conn]).sections()["dot_sessions"][0]["close_reason"] == reason


def test_failure_finding_evidence_in_full() -> None:
    """DA-DOT-001's evidence for three failed attempts of one client to one server."""
    events: list[Event] = [
        f.connection(outcome="syn_unanswered", syn_retransmits=2, handshake_seen=False),
        f.connection(
            outcome="syn_unanswered", syn_retransmits=5, handshake_seen=False, ts=f.TS + 1
        ),
        f.connection(outcome="icmp_rejected", icmp="port-unreachable", handshake_seen=False),
        *f.dot_session_events(sni="dns.quad9.net", server_hello_seen=False, ts=f.TS + 2),
    ]
    hello = events[3]
    events.insert(4, f.alert(description=40, description_name="handshake_failure"))
    conns = [e for e in events if isinstance(e, ConnectionSeen)]
    findings = run(events).finish()
    assert [x.id for x in findings] == ["DA-DOT-001"]
    finding = findings[0]
    assert finding.evidence == {
        "sessions": 4,
        "outcomes": {"syn_unanswered": 2, "icmp_rejected": 1, "tls_alert": 1},
        "versions": {},
        "sni": ["dns.quad9.net"],
        "ja4": [hello.ja4],
        "queries_est": 0,
        "failures": {"syn_unanswered": 2, "icmp_rejected": 1, "tls_alert": 1},
        "alerts": ["handshake_failure"],
        "syn_retransmits": 5,
        "icmp": ["port-unreachable"],
    }
    assert finding.confidence is Confidence.HIGH
    assert (finding.client, finding.server, finding.file) == (f.CLIENT, f.SERVER, f.FILE)
    assert finding.first_ts == min(c.start for c in conns)
    assert finding.last_ts == max(c.end for c in conns)
    assert finding.dedup_key == f"DA-DOT-001|{f.FILE}|{f.CLIENT}|{f.SERVER}"
    assert set(finding.frames) >= {c.last_frame for c in conns}


def test_established_sessions_evidence_counts_versions_and_queries() -> None:
    first = f.dot_session_events(client_lengths=[147, 147], server_lengths=[487, 487])
    second = f.dot_session_events(
        client_lengths=[147], server_lengths=[487], sni="dns9.quad9.net", ts=f.TS + 5
    )
    findings = run([*first, *second]).finish()
    assert [x.id for x in findings] == ["DA-DOT-006"]
    hello = first[0]
    assert isinstance(hello, TlsClientHelloSeen)
    assert findings[0].evidence == {
        "sessions": 2,
        "outcomes": {"established": 2},
        "versions": {"TLSv1.3": 2},
        "sni": ["dns.quad9.net", "dns9.quad9.net"],
        "ja4": [hello.ja4],
        "queries_est": 3,
    }
    assert findings[0].confidence is Confidence.HIGH


def test_obsolete_versions_are_each_a_finding_and_tls12_is_its_own() -> None:
    for version in ("SSLv3", "TLSv1.0", "TLSv1.1"):
        ids = sorted(x.id for x in run(f.dot_session_events(version=version)).finish())
        assert ids == ["DA-DOT-002", "DA-DOT-006"], version
    ids = sorted(x.id for x in run(f.dot_session_events(version="TLSv1.2")).finish())
    assert ids == ["DA-DOT-003", "DA-DOT-006"]
    tls13 = f.dot_session_events(client_lengths=[147], server_lengths=[487])
    assert [x.id for x in run(tls13).finish()] == ["DA-DOT-006"]


def test_missing_sni_needs_a_client_hello() -> None:
    # Without a ClientHello (ja4 None) nothing says the client chose to send no SNI.
    no_hello = f.connection(outcome="closed_fin")
    assert "DA-DOT-004" not in {x.id for x in run([no_hello]).finish()}
    failed = f.dot_session_events(sni=None, server_hello_seen=False)
    assert {x.id for x in run(failed).finish()} == {"DA-DOT-001", "DA-DOT-004"}


def test_aborted_after_server_hello_alone_is_medium_confidence() -> None:
    aborted = f.dot_session_events(client_lengths=[], server_lengths=[])
    (finding,) = run(aborted).finish()
    assert finding.id == "DA-DOT-001" and finding.confidence is Confidence.MEDIUM
    mixed = [*aborted, f.connection(outcome="refused", handshake_seen=False, ts=f.TS + 9)]
    (finding,) = run(mixed).finish()
    assert finding.confidence is Confidence.HIGH


def test_policy_flags_only_unapproved_servers() -> None:
    policy = Policy(approved_dot=(ApprovedResolver(address=f.SERVER),))
    approved = f.dot_session_events(client_lengths=[147], server_lengths=[487])
    other = f.dot_session_events(
        client_lengths=[147], server_lengths=[487], server="198.51.100.7", ts=f.TS + 3
    )
    findings = run([*approved, *other], policy).finish()
    flagged = [x for x in findings if x.id == "DA-POLICY-001"]
    assert [x.server for x in flagged] == ["198.51.100.7"]
    assert "DA-POLICY-001" not in {x.id for x in run(approved + other).finish()}


def test_injected_reset_is_marked_by_its_ttl() -> None:
    normal = f.connection(server_ttl=57, ts=f.TS)
    reset = f.connection(outcome="refused", rst_ttl=64, server_ttl=None, ts=f.TS + 1)
    honest = f.connection(outcome="refused", rst_ttl=57, server_ttl=None, ts=f.TS + 2)
    detector = run([normal, reset, honest])
    findings = detector.finish()
    rows = detector.sections()["dot_sessions"]
    assert [r["reset_injected"] for r in rows] == [None, True, False]
    assert rows[1]["server_ttls"] == [57] and "server_ttls" not in rows[2]
    evidence = next(x for x in findings if x.id == "DA-DOT-001").evidence
    assert evidence["reset_injected"] is True
    assert evidence["reset_ttl"] == [64] and evidence["server_ttls"] == [57]
    assert "injected" in evidence["note"]
    # Without any other packet from the server there is nothing to compare with.
    lone = run([f.connection(outcome="refused", rst_ttl=64, dst="192.0.2.99")])
    lone.finish()
    assert lone.sections()["dot_sessions"][0]["reset_injected"] is False


def test_session_row_ech_and_duration_to_the_microsecond() -> None:
    events = f.dot_session_events(client_lengths=[147], server_lengths=[487])
    hello, conn = events[0], events[-1]
    assert isinstance(hello, TlsClientHelloSeen) and isinstance(conn, ConnectionSeen)
    hello = dataclasses.replace(hello, ech=True)
    conn = dataclasses.replace(conn, end=conn.start + 1.2345678)
    row = run([hello, *events[1:-1], conn]).sections()["dot_sessions"][0]
    assert row["ech"] is True
    assert row["duration_s"] == 1.234568


def test_mid_stream_rows_do_not_hide_later_sessions() -> None:
    mid = f.connection(mid_stream=True, handshake_seen=False, sport=40001)
    failed = f.connection(outcome="refused", handshake_seen=False, sport=40002)
    assert [x.id for x in run([mid, failed]).finish()] == ["DA-DOT-001"]


def test_reset_in_handshake_can_be_an_injected_reset_with_its_note() -> None:
    normal = f.connection(server_ttl=57, sport=40001)
    events = f.dot_session_events(server_hello_seen=False, cport=40002)
    conn = events[-1]
    assert isinstance(conn, ConnectionSeen)
    reset = dataclasses.replace(conn, outcome="closed_rst", rst_ttl=250)
    detector = run([normal, *events[:-1], reset])
    findings = detector.finish()
    row = detector.sections()["dot_sessions"][1]
    assert (row["outcome"], row["reset_injected"]) == ("reset_in_handshake", True)
    evidence = next(x for x in findings if x.id == "DA-DOT-001").evidence
    assert evidence["note"] == (
        "the RST's TTL differs from every packet this server sent on other flows: a "
        "middlebox on the path most likely injected it"
    )


# A distributed run feeds each share of the clients to a detector of its own, merges
# their ``shared_facts`` (the TTLs each server sent) and has every share adopt the result
# before ``finish``: the merge must keep what one run over every client keeps.

S1, S2, S3 = "9.9.9.9", "198.51.100.7", "198.51.100.8"


def _answers(client: str, ttls: list[tuple[str, int]]) -> list[Event]:
    """A plain DNS flow of ``client`` per (server, TTL of what the server sent)."""
    return [
        f.connection(src=client, sport=41000 + n, dst=server, dport=53, server_ttl=ttl)
        for n, (server, ttl) in enumerate(ttls)
    ]


def test_merged_server_ttls_are_what_one_run_over_every_client_keeps() -> None:
    first = _answers("10.0.0.2", [(S1, 57), (S2, 50)])
    second = _answers("10.0.0.3", [(S1, 58)])
    # The second client's connection to S1 is reset with the TTL S1 used towards the first.
    reset = f.connection(
        src="10.0.0.3", sport=42000, dst=S1, outcome="refused", handshake_seen=False, rst_ttl=57
    )
    second.append(reset)
    whole = run(first + second)
    shares = [run(first), run(second)]
    merged = DotSessionOutcomesDetector.merge_shared_facts([s.shared_facts() for s in shares])
    assert merged == whole.shared_facts() == {S1: {57, 58}, S2: {50}}
    # Alone, the second share takes the reset for an injected one; with every client's
    # view of S1 it judges as the one run does: S1 itself sent TTL 57.
    (alone,) = run(second).finish()
    assert alone.evidence["reset_injected"] is True
    shares[1].adopt_shared_facts(merged)
    (failed,) = shares[1].finish()
    assert "reset_injected" not in failed.evidence
    assert shares[1].sections()["dot_sessions"][-1]["reset_injected"] is False
    assert failed.to_dict() == whole.finish()[0].to_dict()


def test_merged_server_ttls_stop_at_the_cap_as_one_run_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dot_session_outcomes, "MAX_SERVERS", 2)
    # Each share stays within the cap; only together does S3 find no room.
    first = _answers("10.0.0.2", [(S1, 57), (S2, 50)])
    second = _answers("10.0.0.3", [(S3, 60), (S1, 58)])
    whole = run(first + second)
    shares = [run(first), run(second)]
    assert [s.caps() for s in shares] == [{}, {}]
    assert whole.caps() == {"dot_server_ttl_table_full": 1}
    merged = DotSessionOutcomesDetector.merge_shared_facts([s.shared_facts() for s in shares])
    assert merged == whole.shared_facts() == {S1: {57, 58}, S2: {50}}
    # What the merge cut is counted by the share it was cut from.
    for share in shares:
        share.adopt_shared_facts(merged)
    assert [s.caps() for s in shares] == [{}, {"dot_server_ttl_table_full": 1}]


def test_a_share_keeps_counting_its_own_caps_after_adopting_the_merge(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dot_session_outcomes, "MAX_SERVERS", 1)
    share = run(_answers("10.0.0.2", [(S1, 57), (S2, 50)]))
    other = run(_answers("10.0.0.3", [(S1, 58)]))
    assert share.caps() == {"dot_server_ttl_table_full": 1}
    merged = DotSessionOutcomesDetector.merge_shared_facts(
        [share.shared_facts(), other.shared_facts()]
    )
    share.adopt_shared_facts(merged)
    assert share.shared_facts() == {S1: {57, 58}}
    assert share.caps() == {"dot_server_ttl_table_full": 1}


def test_shares_count_their_own_cuts_and_the_merge_s_as_one_run_counts_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dot_session_outcomes, "MAX_SERVERS", 1)
    other = _answers("10.0.0.3", [(S3, 60)])
    own = _answers("10.0.0.2", [(S1, 57), (S2, 50)])  # cuts S2 itself; the merge cuts S1
    own.append(
        f.connection(sport=42000, dst=S1, outcome="refused", handshake_seen=False, rst_ttl=64)
    )
    whole = run(other + own)
    shares = [run(other), run(own)]
    assert shares[1].caps() == {"dot_server_ttl_table_full": 1}
    merged = DotSessionOutcomesDetector.merge_shared_facts([s.shared_facts() for s in shares])
    assert merged == whole.shared_facts() == {S3: {60}}
    for share in shares:
        share.adopt_shared_facts(merged)
    assert whole.caps() == {"dot_server_ttl_table_full": 2}
    assert [s.caps() for s in shares] == [{}, {"dot_server_ttl_table_full": 2}]
    # Alone, the share would take the reset from S1 for an injected one; one run kept no
    # room for S1's TTLs, and neither does the share that adopted the merge.
    assert run(own).finish()[0].evidence["reset_injected"] is True
    (failed,) = shares[1].finish()
    assert "reset_injected" not in failed.evidence
    assert failed.to_dict() == whole.finish()[0].to_dict()
