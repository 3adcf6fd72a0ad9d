"""Split leak: plaintext DNS while the same client has an established DoT session."""

from __future__ import annotations

import dataclasses

import pytest

from dotaudit.detect import base, recent_plaintext, split_leak
from dotaudit.detect.base import Context
from dotaudit.detect.recent_plaintext import OutboundPlaintextQuery
from dotaudit.detect.session_assembly import DotSessionAssembled, DotSessionAssembler
from dotaudit.detect.split_leak import SplitLeakDetector
from dotaudit.model.events import Event
from dotaudit.model.findings import CATALOGUE, MAX_FRAMES
from tests import factories as f
from tests.allocations import bytes_kept
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


def test_a_long_overlap_of_two_sessions_counts_each_query_once() -> None:
    # 300 queries while both sessions are up: more than any fixed list of frames seen.
    first = _ending_at(_session(100.0), 101.0)
    second = _ending_at(_session(100.5, cport=40001), 102.0)
    shared = [f.dns_query(ts=100.5 + i / 1000, qname=f"q{i}.example") for i in range(300)]
    events = [*first[:-1], *second[:-1], *shared, first[-1], second[-1]]
    (finding,) = run(events).finish()
    assert finding.evidence["plaintext_queries"] == 300
    assert finding.evidence["qname_count"] == 300


def test_a_session_around_an_earlier_one_counts_only_what_that_one_did_not() -> None:
    # The outer session started first but ends last: the inner one's queries count once,
    # the outer one's own (before and after the inner one) count too.
    inner = _ending_at(_session(100.0, cport=40001), 101.0)
    outer = _ending_at(_session(99.0), 102.0)
    before = [f.dns_query(ts=99.0 + i / 1000) for i in range(300)]
    during = [f.dns_query(ts=100.0 + i / 1000) for i in range(300)]
    after = [f.dns_query(ts=101.5)]
    events = [*outer[:-1], *inner[:-1], *before, *during, inner[-1], *after, outer[-1]]
    detected = f.run_detectors(events, only=SplitLeakDetector)
    (finding,) = detected.findings
    # The window keeps the client's last 512 queries (recent_plaintext.PER_CLIENT): when
    # the outer session ends it holds 211 of the 300 before the inner one (601 - 512 = 89
    # older ones left), all 300 during it (counted once, by the inner one) and the last.
    assert recent_plaintext.PER_CLIENT == 512
    assert finding.evidence["plaintext_queries"] == 300 + 211 + 1


@pytest.mark.parametrize(
    ("kept", "counted"), [(8, 7), (7, 7), (6, 8)], ids=["bound", "exactly-enough", "one-short"]
)
def test_counted_frames_kept_are_enough_in_the_worst_case(
    monkeypatch: pytest.MonkeyPatch, kept: int, counted: int
) -> None:
    """A window of 4 queries per client: q is counted, then three older queries (in the
    window beside q) and three newer ones (arriving while q is still there), 2 * 4 - 2
    after it, and then a last session brings q again. Remembering 2 * PER_CLIENT counted
    frames counts q once, with one to spare: remembering exactly the 2 * 4 - 1 that q and
    the six after it take still does, and one fewer counts q twice."""
    monkeypatch.setattr(recent_plaintext, "PER_CLIENT", 4)
    monkeypatch.setattr(split_leak, "COUNTED_KEPT", kept)
    assert kept == split_leak.COUNTED_KEPT
    older = [f.dns_query(ts=10.0 + i / 10) for i in range(3)]
    q = f.dns_query(ts=11.0, qname="q.example")
    newer = [f.dns_query(ts=12.0 + i / 10) for i in range(3)]
    only_q = _ending_at(_session(10.9, cport=40001), 11.05)
    only_older = _ending_at(_session(9.9, cport=40002), 10.5)
    only_newer = _ending_at(_session(11.9, cport=40003), 12.5)
    q_again = _ending_at(_session(10.95, cport=40004), 13.0)
    sessions = (only_q, only_older, only_newer, q_again)
    events = [e for s in sessions for e in s[:-1]]
    events += [*older, q, only_q[-1], only_older[-1], *newer, only_newer[-1], q_again[-1]]
    (finding,) = run(events).finish()
    assert finding.evidence["plaintext_queries"] == counted


def test_the_default_bound_is_twice_the_window() -> None:
    assert split_leak.COUNTED_KEPT == 2 * recent_plaintext.PER_CLIENT == 1024


def _leak_with_names(names: list[str]) -> list[Event]:
    session = _session(100.0)
    queries = [f.dns_query(ts=100.5, qname=name) for name in names]
    return [*session[:-1], *queries, session[-1]]


def test_split_leak_names_draw_on_the_run_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    assert base.TRACK_BUDGET == 100_000
    monkeypatch.setattr(base, "TRACK_BUDGET", 2)
    at_budget = run(_leak_with_names(["a.example", "b.example"]))
    assert at_budget.caps() == {}
    assert at_budget.finish()[0].evidence["qname_count"] == 2
    over = run(_leak_with_names(["a.example", "b.example", "c.example"]))
    assert over.caps() == {"split_leak_names_untracked": 1}
    assert over.finish()[0].evidence["qname_count"] == 2  # a lower bound once refused


def _leak_to_dot_servers(servers: list[str]) -> list[Event]:
    events: list[Event] = []
    for i, server in enumerate(servers):
        session = _session(100.0 + 10 * i, server=server, cport=40000 + i)
        events += [*session[:-1], f.dns_query(ts=100.5 + 10 * i), session[-1]]
    return events


def test_dot_servers_listed_stop_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    assert split_leak.MAX_SERVERS == 20
    monkeypatch.setattr(split_leak, "MAX_SERVERS", 2)
    (at_cap,) = run(_leak_to_dot_servers(["192.0.2.1", "192.0.2.2"])).finish()
    assert at_cap.evidence["dot_servers"] == ["192.0.2.1", "192.0.2.2"]
    (over,) = run(_leak_to_dot_servers(["192.0.2.1", "192.0.2.2", "192.0.2.3"])).finish()
    assert over.evidence["dot_servers"] == ["192.0.2.1", "192.0.2.2"]
    assert over.evidence["plaintext_queries"] == 3


def _leak_to_plaintext_servers(servers: list[str]) -> list[Event]:
    session = _session(100.0)
    queries = [f.dns_query(ts=100.5, dst=server) for server in servers]
    return [*session[:-1], *queries, session[-1]]


def test_plaintext_servers_listed_stop_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    assert split_leak.MAX_SERVERS == 20
    monkeypatch.setattr(split_leak, "MAX_SERVERS", 2)
    (at_cap,) = run(_leak_to_plaintext_servers(["192.0.2.53", "192.0.2.54"])).finish()
    assert at_cap.evidence["plaintext_servers"] == ["192.0.2.53", "192.0.2.54"]
    servers = ["192.0.2.53", "192.0.2.54", "192.0.2.55"]
    (over,) = run(_leak_to_plaintext_servers(servers)).finish()
    assert over.evidence["plaintext_servers"] == ["192.0.2.53", "192.0.2.54"]
    assert over.server == "192.0.2.53, 192.0.2.54"
    assert over.evidence["plaintext_queries"] == 3


def test_frames_listed_stop_at_the_cap_while_every_query_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert split_leak.MAX_FRAMES_SEEN == 200
    monkeypatch.setattr(split_leak, "MAX_FRAMES_SEEN", 2)
    session = _session(100.0)
    queries = [f.dns_query(ts=100.5 + i / 100) for i in range(3)]
    (at_cap,) = run([*session[:-1], *queries[:2], session[-1]]).finish()
    assert at_cap.frames == (queries[0].frame, queries[1].frame)
    (over,) = run([*session[:-1], *queries, session[-1]]).finish()
    assert over.frames == (queries[0].frame, queries[1].frame)
    assert over.evidence["plaintext_queries"] == 3


def _assembled_with(queries: list[OutboundPlaintextQuery], cport: int) -> DotSessionAssembled:
    events = _session(100.0, cport=cport)
    assembler = DotSessionAssembler()
    (session,) = [s for e in events if (s := assembler.feed(e)) is not None]
    last = events[-1]
    return DotSessionAssembled(
        file=last.file, frame=last.frame, ts=last.ts, src=last.src, sport=last.sport,
        dst=last.dst, dport=last.dport, transport=last.transport, session=session,
        recent_plaintext=tuple(queries),
    )  # fmt: skip


def _queries(frames: range) -> list[OutboundPlaintextQuery]:
    fields = {"file": f.FILE, "ts": 100.0, "src": f.CLIENT, "sport": 50000}
    fields |= {"dst": "192.0.2.53", "dport": 53, "transport": "udp", "qname": "a.example"}
    return [OutboundPlaintextQuery(frame=frame, **fields) for frame in frames]  # type: ignore[arg-type]


def test_a_client_s_counted_frames_cost_8_bytes_each() -> None:
    """Up to MAX_CLIENTS clients each remember their last COUNTED_KEPT counted frames:
    as a dict of ints a full client cost about 45 KB, with its 200 sample frames in a
    set."""
    sessions = [
        _assembled_with(_queries(range(k * 400, k * 400 + 500)), 40000 + k) for k in range(4)
    ]
    detector = SplitLeakDetector(Context())

    def feed() -> None:
        for event in sessions:
            detector.on_event(event)

    held = bytes_kept(feed)
    (finding,) = detector.finish()
    # 500 new frames, then 400 new (and 100 already counted) each time.
    assert finding.evidence["plaintext_queries"] == 500 + 3 * 400
    assert finding.frames == tuple(range(MAX_FRAMES))  # the lowest of the 200 kept
    assert held < 2 * 8 * split_leak.COUNTED_KEPT + 8 * 200 + 4096


def test_counted_frames_past_64_bits_still_count_once() -> None:
    """A capture set's frames carry the file's place above 64 bits."""
    big = 5 << 64
    detector = SplitLeakDetector(Context())
    detector.on_event(_assembled_with(_queries(range(big, big + 3)), 40000))
    detector.on_event(_assembled_with(_queries(range(big + 1, big + 5)), 40001))
    (finding,) = detector.finish()
    assert finding.evidence["plaintext_queries"] == 5
    assert finding.frames == tuple(range(big, big + 5))


@pytest.mark.parametrize(
    ("kept", "again", "counted"),
    [(3, 10, 5), (3, 1, 4), (4, 10, 4), (4, 1, 4)],
    ids=["oldest-forgotten", "lowest-remembered", "room-for-all", "room-for-all-1"],
)
def test_counted_frames_forget_the_first_counted_not_the_lowest(
    monkeypatch: pytest.MonkeyPatch, kept: int, again: int, counted: int
) -> None:
    """Frames 10-12 are counted, then 1. With room for three the first counted (10) is
    forgotten, so a session bringing it again counts it again, while 1, the lowest, is
    still remembered; with room for four nothing is forgotten."""
    monkeypatch.setattr(split_leak, "COUNTED_KEPT", kept)
    detector = SplitLeakDetector(Context())
    for cport, frames in ((40000, [10, 11, 12]), (40001, [1]), (40002, [again])):
        queries = [q for frame in frames for q in _queries(range(frame, frame + 1))]
        detector.on_event(_assembled_with(queries, cport))
    (finding,) = detector.finish()
    assert finding.evidence["plaintext_queries"] == counted
