"""DotSessionAssembler and DotSession: how the events of one DoT flow become a session.

Oracles: RFC 7858 §3.1 (DoT is TCP port 853, or ALPN "dot"), RFC 8446 (a TLS 1.3
client's Finished is its first application-data record; a close_notify alert is a
2 + 17 byte record) and the events each test builds.
"""

from __future__ import annotations

import dataclasses

import pytest

from dotaudit.detect import sessions
from dotaudit.detect.sessions import (
    DotSession,
    DotSessionAssembler,
    classify_outcome,
    is_dot_candidate,
)
from dotaudit.model.events import ConnectionSeen, Event, TlsClientHelloSeen
from tests import factories as f


def assemble(events: list[Event]) -> list[DotSession]:
    assembler = DotSessionAssembler()
    return [s for e in events if (s := assembler.feed(e)) is not None]


def test_session_takes_its_endpoints_and_times_from_the_connection() -> None:
    events = f.dot_session_events(client_lengths=[147], server_lengths=[487], cport=41234)
    hello, conn = events[0], events[-1]
    assert isinstance(hello, TlsClientHelloSeen) and isinstance(conn, ConnectionSeen)
    (session,) = assemble(events)
    assert (session.file, session.client, session.cport, session.server, session.sport) == (
        f.FILE,
        f.CLIENT,
        41234,
        f.SERVER,
        853,
    )
    assert (session.start, session.end) == (conn.start, conn.end)
    assert (session.first_frame, session.last_frame) == (conn.first_frame, conn.last_frame)
    assert session.client_hello == hello


def test_connection_without_a_hello_still_makes_a_session() -> None:
    conn = f.connection(outcome="refused", sport=42000, handshake_seen=False)
    (session,) = assemble([conn])
    assert (session.cport, session.sport) == (42000, 853)
    assert (session.first_frame, session.start) == (conn.first_frame, conn.start)
    assert session.last_frame == conn.last_frame
    assert session.outcome == "reset"


def test_other_ports_need_the_dot_alpn() -> None:
    on_443 = f.dot_session_events(sport=443, alpn=("h2",), client_lengths=[147])
    assert assemble(on_443) == []
    dot_443 = f.dot_session_events(sport=443, alpn=("dot",), client_lengths=[147])
    (session,) = assemble(dot_443)
    assert session.sport == 443 and session.client_hello is not None


def test_first_hello_wins_and_a_hello_opens_a_session_at_its_frame() -> None:
    events = f.dot_session_events(client_lengths=[147], server_lengths=[487])
    hello = events[0]
    again = dataclasses.replace(hello, frame=hello.frame + 100, sni="second.example")
    assembler = DotSessionAssembler()
    assembler.feed(hello)
    assembler.feed(again)
    (opened,) = assembler._open.values()
    assert opened.client_hello is hello
    assert (opened.first_frame, opened.start, opened.cport) == (hello.frame, hello.ts, 40000)


def test_open_sessions_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions, "MAX_OPEN", 1)
    first = f.client_hello(sport=40001)
    second = f.client_hello(sport=40002)
    assembler = DotSessionAssembler()
    assembler.feed(first)
    assembler.feed(second)
    assert len(assembler._open) == 1


def test_alerts_and_certificates_are_kept_up_to_sixteen() -> None:
    events = f.dot_session_events(server_hello_seen=True, client_lengths=[147])
    conn = events[-1]
    extra: list[Event] = [f.alert(ts=f.TS + 0.01) for _ in range(17)]
    extra += [f.certificate(position=i) for i in range(17)]
    (session,) = assemble([*events[:-1], *extra, conn])
    assert len(session.alerts) == 16 and len(session.certificates) == 16


def test_client_alert_is_matched_by_its_own_direction() -> None:
    events = f.dot_session_events(server_hello_seen=False)
    client_alert = f.alert(from_server=False, description=48, description_name="unknown_ca")
    (session,) = assemble([*events[:-1], client_alert, events[-1]])
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
    (session,) = assemble([f.connection(handshake_seen=False, **connection)])  # type: ignore[arg-type]
    assert classify_outcome(session) == outcome


def test_outcome_of_a_session_without_connection_is_open() -> None:
    session = DotSession(f.FILE, f.CLIENT, 40000, f.SERVER, 853, first_frame=1, start=f.TS)
    assert classify_outcome(session) == "open"
    assert session.failure == "open"
    assert session.frames() == [1]


def test_mid_stream_with_a_hello_is_judged_by_its_handshake() -> None:
    events = f.dot_session_events(client_lengths=[147], server_lengths=[487])
    conn = dataclasses.replace(events[-1], mid_stream=True)  # type: ignore[type-var]
    (session,) = assemble([*events[:-1], conn])
    assert session.outcome == "established"


def test_fatal_alert_after_queries_is_still_established() -> None:
    events = f.dot_session_events(client_lengths=[147], server_lengths=[487])
    (session,) = assemble([*events[:-1], f.alert(), events[-1]])
    assert session.outcome == "established" and session.failure is None


def test_fatal_alert_with_only_server_records_is_a_tls_alert() -> None:
    events = f.dot_session_events(version="TLSv1.2", server_lengths=[90])
    (session,) = assemble([*events[:-1], f.alert(), events[-1]])
    assert session.outcome == "tls_alert"


@pytest.mark.parametrize(("duration", "outcome"), [(4.99, "aborted_after_server_hello"),
                                                   (5.0, "established")])  # fmt: skip
def test_tls13_abort_right_after_the_server_flight(duration: float, outcome: str) -> None:
    events = f.dot_session_events(server_lengths=[90])
    conn = events[-1]
    assert isinstance(conn, ConnectionSeen)
    conn = dataclasses.replace(conn, end=conn.start + duration)
    (session,) = assemble([*events[:-1], conn])
    assert session.outcome == outcome


def test_tls13_records_strip_finished_close_notify_and_the_server_flight() -> None:
    events = f.dot_session_events(client_lengths=[147, 19, 147], server_lengths=[487, 487])
    (session,) = assemble(events)
    assert [r.length for r in session.app_records(from_client=True)] == [147, 19, 147]
    # Two messages (the 19-byte record is a bare length prefix), so two answers.
    assert session.client_messages() == 2
    assert [r.length for r in session.app_records(from_client=False)] == [487, 487]


def test_tls12_counts_every_record_longer_than_a_prefix() -> None:
    events = f.dot_session_events(version="TLSv1.2", client_lengths=[2, 3, 90])
    (session,) = assemble(events)
    assert session.client_messages() == 2


def test_tls13_without_client_messages_has_no_answers() -> None:
    events = f.dot_session_events(server_lengths=[90, 90])
    (session,) = assemble(events)
    assert session.app_records(from_client=False) == []


def test_frames_include_icmp_and_last_frame() -> None:
    conn = f.connection(outcome="icmp_rejected", icmp="port-unreachable", icmp_frame=777)
    (session,) = assemble([conn])
    assert session.frames() == [conn.first_frame, conn.last_frame, 777]


def test_is_dot_candidate_is_tcp_to_or_from_853() -> None:
    assert is_dot_candidate(f.client_hello(dport=853))
    assert is_dot_candidate(f.server_hello(sport=853, dport=40000))
    assert not is_dot_candidate(f.client_hello(dport=443))
    assert not is_dot_candidate(f.quic_initial(dport=853))


def test_tls13_queries_without_any_answer_record_are_still_established() -> None:
    events = f.dot_session_events(client_lengths=[147])
    conn = events[-1]
    assert isinstance(conn, ConnectionSeen)
    conn = dataclasses.replace(conn, tls_records_rev=())
    (session,) = assemble([*events[:-1], conn])
    assert session.outcome == "established"
