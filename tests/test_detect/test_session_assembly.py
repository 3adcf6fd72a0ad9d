"""DoT session assembly: the assembler, and the stage that emits each session once."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import pytest

from dotaudit.detect import recent_plaintext, session_assembly
from dotaudit.detect.base import Context, Detector
from dotaudit.detect.recent_plaintext import OutboundPlaintextQuery
from dotaudit.detect.registry import DETECTORS
from dotaudit.detect.runner import DetectorRunner
from dotaudit.detect.session_assembly import (
    DotSession,
    DotSessionAssembled,
    DotSessionAssembler,
    SessionStage,
)
from dotaudit.model.events import ConnectionSeen, Event
from dotaudit.model.findings import Finding
from dotaudit.model.policy import Policy
from dotaudit.pipeline import analyze_file
from tests import factories as f
from tests.conftest import ROOT


def _assemble(events: list[Event]) -> list[DotSession]:
    assembler = DotSessionAssembler()
    return [s for e in events if (s := assembler.feed(e)) is not None]


def test_connection_event_completes_the_session_with_its_handshake() -> None:
    cert = f.certificate()
    events = f.dot_session_events(client_lengths=[147], server_lengths=[487], certificates=[cert])
    hello, server_hello, _, conn = events
    (session,) = _assemble(events)
    assert session.client_hello == hello and session.server_hello == server_hello
    assert [c.subject for c in session.certificates] == [cert.subject]
    assert session.connection == conn
    assert (session.client, session.cport, session.server, session.sport) == (
        f.CLIENT, 40000, f.SERVER, 853,
    )  # fmt: skip
    assert (session.start, session.end) == (conn.start, conn.end)
    assert (session.first_frame, session.last_frame) == (conn.first_frame, conn.last_frame)
    assert session.outcome == "established" and session.failure is None


def test_a_session_is_frozen() -> None:
    (session,) = _assemble(f.dot_session_events(client_lengths=[147], server_lengths=[487]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        session.client = "10.9.9.9"  # type: ignore[misc]


def test_port_853_connection_without_a_hello_is_a_session() -> None:
    conn = f.connection(outcome="syn_unanswered", handshake_seen=False, sport=40123)
    (session,) = _assemble([conn])
    assert session.client_hello is None and session.failure == "syn_unanswered"
    assert (session.client, session.cport, session.server, session.sport) == (
        f.CLIENT, 40123, f.SERVER, 853,
    )  # fmt: skip


def test_alpn_dot_on_another_port_is_a_session_and_plain_tls_is_not() -> None:
    dot_443 = f.dot_session_events(sport=443, client_lengths=[147], server_lengths=[487])
    https = f.dot_session_events(sport=443, alpn=("h2",), cport=40001)
    sessions = _assemble([*dot_443, *https])
    assert [(s.sport, s.client_hello and s.client_hello.alpn) for s in sessions] == [
        (443, ("dot",))
    ]


def test_handshake_facts_per_session_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_assembly, "MAX_HANDSHAKE_FACTS", 2)
    events = f.dot_session_events(certificates=[f.certificate(position=i) for i in range(3)])
    assembler = DotSessionAssembler()
    (session,) = [s for e in events if (s := assembler.feed(e)) is not None]
    assert [c.position for c in session.certificates] == [0, 1]
    assert assembler.facts_dropped == 1  # the third certificate, counted


def test_every_alert_and_certificate_past_the_cap_is_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(session_assembly, "MAX_HANDSHAKE_FACTS", 2)
    events = f.dot_session_events(server_hello_seen=True, client_lengths=[147])
    assembler = DotSessionAssembler()
    for event in events[:-1]:
        assembler.feed(event)
    for _ in range(4):
        assembler.feed(f.alert(ts=f.TS + 0.01))
    assert assembler.facts_dropped == 2  # the third and the fourth alert
    for i in range(4):
        assembler.feed(f.certificate(position=i))
    assert assembler.facts_dropped == 4  # and the third and the fourth certificate
    session = assembler.feed(events[-1])
    assert session is not None
    assert len(session.alerts) == 2 and [c.position for c in session.certificates] == [0, 1]


def test_handshake_facts_at_the_cap_drop_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_assembly, "MAX_HANDSHAKE_FACTS", 3)
    events = f.dot_session_events(certificates=[f.certificate(position=i) for i in range(3)])
    assembler = DotSessionAssembler()
    (session,) = [s for e in events if (s := assembler.feed(e)) is not None]
    assert len(session.certificates) == 3 and assembler.facts_dropped == 0


def test_handshake_facts_cap_is_the_documented_one() -> None:
    assert session_assembly.MAX_HANDSHAKE_FACTS == 16
    assert session_assembly.MAX_OPEN == 10_000


def test_open_handshakes_over_the_cap_forget_the_oldest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_assembly, "MAX_OPEN", 2)
    first = f.dot_session_events(cport=40001)
    second = f.dot_session_events(cport=40002)
    third = f.dot_session_events(cport=40003)
    # All hellos arrive before any connection ends: at the third the oldest is forgotten,
    # so a flood of hellos that never complete cannot lock out the sessions after it.
    events = [first[0], second[0], third[0], *first[1:], *second[1:], *third[1:]]
    assembler = DotSessionAssembler()
    sessions = [s for e in events if (s := assembler.feed(e)) is not None]
    assert assembler.dropped == 1
    assert [s.client_hello is not None for s in sessions] == [False, True, True]


def test_every_open_handshake_forgotten_for_room_is_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(session_assembly, "MAX_OPEN", 2)
    flows = [f.dot_session_events(cport=40001 + i) for i in range(4)]
    events = [flow[0] for flow in flows] + [e for flow in flows for e in flow[1:]]
    assembler = DotSessionAssembler()
    sessions = [s for e in events if (s := assembler.feed(e)) is not None]
    assert assembler.dropped == 2  # the first two hellos, one for each later one
    assert [s.client_hello is not None for s in sessions] == [False, False, True, True]


def test_open_handshakes_at_the_cap_are_all_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_assembly, "MAX_OPEN", 2)
    first = f.dot_session_events(cport=40001)
    second = f.dot_session_events(cport=40002)
    events = [first[0], second[0], *first[1:], *second[1:]]
    assembler = DotSessionAssembler()
    sessions = [s for e in events if (s := assembler.feed(e)) is not None]
    assert assembler.dropped == 0
    assert [s.client_hello is not None for s in sessions] == [True, True]


class _Recorder(Detector):
    """Keeps every derived event it was routed, to see what the stage emitted."""

    name: ClassVar[str] = "recorder"
    event_types: ClassVar[frozenset[type[Event]]] = frozenset(SessionStage.emits)

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.seen: list[Event] = []

    def on_event(self, event: Event) -> None:
        self.seen.append(event)

    def finish(self) -> list[Finding]:
        return []


def _recorded(events: list[Event], policy: Policy | None = None) -> list[Event]:
    return f.fed_detector(_Recorder, events, policy).seen


def test_stage_emits_each_session_once_with_the_clients_recent_queries() -> None:
    before = f.dns_query(ts=99.0, qname="before.example")
    during = f.dns_query(ts=100.5, qname="during.example")
    other_client = f.dns_query(ts=100.5, src="10.0.0.9")
    session = f.dot_session_events(client_lengths=[147], server_lengths=[487], ts=100.0)
    seen = _recorded([before, *session[:-1], during, other_client, session[-1]])
    assembled = [e for e in seen if isinstance(e, DotSessionAssembled)]
    assert len(assembled) == 1
    event = assembled[0]
    conn = session[-1]
    assert (event.file, event.frame) == (conn.file, conn.frame)
    assert (event.src, event.dst) == (f.CLIENT, f.SERVER)
    # The event's own fields are those of the connection event that completed it.
    assert (event.ts, event.sport, event.dport, event.transport) == (
        conn.ts, conn.sport, conn.dport, conn.transport,
    )  # fmt: skip
    assert (event.ts, event.sport, event.dport, event.transport) == (100.0, 40000, 853, "tcp")
    assert event.session.connection == conn
    assert [q.qname for q in event.recent_plaintext] == ["during.example"]
    queries = [e for e in seen if isinstance(e, OutboundPlaintextQuery)]
    assert [q.qname for q in queries] == ["before.example", "during.example", "example.com"]
    # Emitted at once: each query before the session that completed after it.
    assert seen.index(queries[1]) < seen.index(event)


def test_every_session_subscriber_sees_the_same_session() -> None:
    events = f.dot_session_events(client_lengths=[147], server_lengths=[487])
    runner = DetectorRunner(Context(), (_Recorder, _Recorder))
    for event in events:
        runner.feed(event)
    first, second = (d.seen for d in runner.detectors)  # type: ignore[attr-defined]
    assert len(first) == 1 and first[0] is second[0]


def test_stage_runs_only_when_a_detector_subscribes_to_what_it_emits() -> None:
    plain = [cls for cls in DETECTORS if not cls.event_types & SessionStage.emits]
    assert plain  # leak, ecs, ...: they get the raw events only
    runner = DetectorRunner(Context(), plain)
    assert runner.finish().caps == {}
    assert DetectorRunner(Context(), (_Recorder,))._stage is not None


def test_caps_that_bit_reach_the_report_as_anomaly_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(session_assembly, "MAX_OPEN", 0)
    result = analyze_file(ROOT / "pcaps" / "01-kdig-strict-dot.pcap", Context())
    dropped: Any = result.anomalies.get("dot_handshake_table_full")
    assert isinstance(dropped, int) and dropped >= 1
    rows = result.sections["dot_sessions"]
    assert rows and all(row["sni"] is None for row in rows)  # no hello was followed


def test_no_caps_bite_no_counts() -> None:
    result = analyze_file(ROOT / "pcaps" / "01-kdig-strict-dot.pcap", Context())
    for cap in (
        "dot_handshake_table_full",
        "dot_handshake_facts_dropped",
        "plaintext_window_evicted",
        "plaintext_lookback_cut",
        "flows_evicted",
    ):
        assert cap not in result.anomalies
    assert "dot_handshake_table_full" not in result.anomalies
    assert "plaintext_window_full" not in result.anomalies


# Oracles below: RFC 7858 §3.1 (DoT is TCP port 853, or ALPN "dot"), RFC 8446 (a TLS 1.3
# client's Finished is its first application-data record; a close_notify alert is a
# 2 + 17 byte record) and the events each test builds.


def test_the_first_hello_of_a_flow_wins() -> None:
    events = f.dot_session_events(client_lengths=[147], server_lengths=[487])
    hello = events[0]
    again = dataclasses.replace(hello, frame=hello.frame + 100, sni="second.example")
    (session,) = _assemble([hello, again, *events[1:]])
    assert session.client_hello is hello and session.sni == "dns.quad9.net"


def test_alerts_and_certificates_are_kept_up_to_sixteen() -> None:
    assert session_assembly.MAX_HANDSHAKE_FACTS == 16  # the documented value
    events = f.dot_session_events(server_hello_seen=True, client_lengths=[147])
    conn = events[-1]
    extra: list[Event] = [f.alert(ts=f.TS + 0.01) for _ in range(17)]
    extra += [f.certificate(position=i) for i in range(17)]
    (session,) = _assemble([*events[:-1], *extra, conn])
    assert len(session.alerts) == 16 and len(session.certificates) == 16


def test_client_alert_is_matched_by_its_own_direction() -> None:
    events = f.dot_session_events(server_hello_seen=False)
    client_alert = f.alert(from_server=False, description=48, description_name="unknown_ca")
    (session,) = _assemble([*events[:-1], client_alert, events[-1]])
    assert [a.description_name for a in session.alerts] == ["unknown_ca"]
    assert session.outcome == "tls_alert"


@pytest.mark.parametrize(
    ("connection", "outcome"),
    [
        ({"outcome": "syn_unanswered"}, "syn_unanswered"),
        ({"outcome": "refused"}, "reset"),
        ({"outcome": "icmp_rejected"}, "icmp_rejected"),
        ({"outcome": "closed_rst"}, "reset_in_handshake"),
        ({"outcome": "closed_fin"}, "handshake_incomplete"),
        ({"outcome": "closed_fin", "mid_stream": True}, "mid_stream"),
    ],
)
def test_outcome_without_a_server_hello(connection: dict[str, object], outcome: str) -> None:
    (session,) = _assemble([f.connection(handshake_seen=False, **connection)])  # type: ignore[arg-type]
    assert session.outcome == outcome
    assert session.failure == (None if outcome == "mid_stream" else outcome)


def test_mid_stream_with_a_hello_is_judged_by_its_handshake() -> None:
    events = f.dot_session_events(client_lengths=[147], server_lengths=[487])
    conn = dataclasses.replace(events[-1], mid_stream=True)  # type: ignore[type-var]
    (session,) = _assemble([*events[:-1], conn])
    assert session.outcome == "established"


def test_fatal_alert_after_queries_is_still_established() -> None:
    events = f.dot_session_events(client_lengths=[147], server_lengths=[487])
    (session,) = _assemble([*events[:-1], f.alert(), events[-1]])
    assert session.outcome == "established" and session.failure is None


def test_fatal_alert_with_only_server_records_is_a_tls_alert() -> None:
    events = f.dot_session_events(version="TLSv1.2", server_lengths=[90])
    (session,) = _assemble([*events[:-1], f.alert(), events[-1]])
    assert session.outcome == "tls_alert"


@pytest.mark.parametrize(("duration", "outcome"), [(4.99, "aborted_after_server_hello"),
                                                   (5.0, "established")])  # fmt: skip
def test_tls13_abort_right_after_the_server_flight(duration: float, outcome: str) -> None:
    events = f.dot_session_events(server_lengths=[90])
    conn = events[-1]
    assert isinstance(conn, ConnectionSeen)
    conn = dataclasses.replace(conn, end=conn.start + duration)
    (session,) = _assemble([*events[:-1], conn])
    assert session.outcome == outcome


def test_tls13_records_strip_finished_close_notify_and_the_server_flight() -> None:
    events = f.dot_session_events(client_lengths=[147, 19, 147], server_lengths=[487, 487])
    (session,) = _assemble(events)
    assert [r.length for r in session.app_records(from_client=True)] == [147, 19, 147]
    # Two messages (the 19-byte record is a bare length prefix), so two answers.
    assert session.client_messages() == 2
    assert [r.length for r in session.app_records(from_client=False)] == [487, 487]


def test_tls12_counts_every_record_longer_than_a_prefix() -> None:
    events = f.dot_session_events(version="TLSv1.2", client_lengths=[2, 3, 90])
    (session,) = _assemble(events)
    assert session.client_messages() == 2


def test_tls13_without_client_messages_has_no_answers() -> None:
    events = f.dot_session_events(server_lengths=[90, 90])
    (session,) = _assemble(events)
    assert session.app_records(from_client=False) == []


def test_frames_include_icmp_and_last_frame() -> None:
    conn = f.connection(outcome="icmp_rejected", icmp="port-unreachable", icmp_frame=777)
    (session,) = _assemble([conn])
    assert session.frames() == [conn.first_frame, conn.last_frame, 777]


def test_tls13_queries_without_any_answer_record_are_still_established() -> None:
    events = f.dot_session_events(client_lengths=[147])
    conn = events[-1]
    assert isinstance(conn, ConnectionSeen)
    conn = dataclasses.replace(conn, tls_records_rev=())
    (session,) = _assemble([*events[:-1], conn])
    assert session.outcome == "established"


def _stage_caps(events: list[Event]) -> dict[str, int]:
    stage = SessionStage(Policy(), lambda event: None)
    handlers = stage.handlers()
    for event in events:
        handle = handlers.get(type(event))
        if handle is not None:
            handle(event)
    return stage.caps()


def test_handshake_facts_past_their_cap_are_counted_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(session_assembly, "MAX_HANDSHAKE_FACTS", 2)
    events = f.dot_session_events(certificates=[f.certificate(position=i) for i in range(3)])
    assert _stage_caps(events) == {"dot_handshake_facts_dropped": 1}


def test_clients_evicted_from_the_plaintext_window_are_counted_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recent_plaintext, "MAX_CLIENTS", 1)
    events: list[Event] = [f.dns_query(src="10.0.0.2"), f.dns_query(src="10.0.0.3")]
    assert _stage_caps(events) == {"plaintext_window_evicted": 1}


def test_a_look_back_past_what_the_window_let_go_is_counted_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recent_plaintext, "PER_CLIENT", 1)
    session = f.dot_session_events(client_lengths=[147], server_lengths=[487], ts=100.0)
    # Two queries after the session's start: the window keeps one, and the session's
    # look-back from its start wants the one it let go.
    during = [f.dns_query(ts=100.2), f.dns_query(ts=100.5)]
    assert _stage_caps([*session[:-1], *during, session[-1]]) == {"plaintext_lookback_cut": 1}
