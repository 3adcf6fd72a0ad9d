"""Fallback detector: a failed DoT attempt followed by plaintext DNS from the same client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dotaudit.capture import flows
from dotaudit.detect import dot_session_outcomes, fallback
from dotaudit.detect.base import Context
from dotaudit.detect.fallback import FAILURE_TEXT, FallbackDetector
from dotaudit.model.events import ConnectionSeen, Event
from dotaudit.model.findings import Severity
from dotaudit.model.policy import Policy
from dotaudit.pipeline import analyze_file
from tests import factories as f
from tests import pcapgen

LOOPBACK_AS_NETWORK = Context(policy=Policy(treat_loopback_as_network=True))


def run(events: list[Event], context: Context | None = None) -> FallbackDetector:
    # In emission order: a connection event comes last and completes its session.
    return f.fed_detector(FallbackDetector, events, context)


def failed_attempt(outcome: str, *, start: float, end: float, **kw: object) -> Event:
    return f.connection(outcome=outcome, start=start, end=end, ts=start, handshake_seen=False, **kw)


def test_drop_then_plaintext_is_a_high_fallback() -> None:
    # The SYN flow's connection event only arrives when the flow expires, long after the
    # plaintext query: the detector must look back.
    attempt = failed_attempt("syn_unanswered", start=100.0, end=103.0, syn_retransmits=2)
    attempt = f.connection(**{**_fields(attempt), "ts": 400.0})
    query = f.dns_query(ts=102.0, qname="fallback.example")
    detector = run([query, attempt])
    findings = detector.finish()
    assert [x.id for x in findings] == ["DA-FALLBACK-001"]
    finding = findings[0]
    assert finding.severity is Severity.HIGH
    assert finding.evidence["failures"] == ["syn_unanswered"]
    assert finding.evidence["qnames"] == ["fallback.example"]
    assert finding.evidence["delay_s"] == 2.0
    row = detector.sections()["fallback_events"][0]
    assert row["client"] == f.CLIENT and row["dot_server"] == f.SERVER
    assert row["plaintext_server"] == f.SERVER
    assert query.frame in row["frames"]


def test_reset_then_later_plaintext_within_window() -> None:
    attempt = failed_attempt("refused", start=100.0, end=100.001)
    query = f.dns_query(ts=105.0, qname="late.example")
    findings = run([attempt, query]).finish()
    assert findings and findings[0].evidence["failures"] == ["reset"]


def test_plaintext_after_the_window_is_not_a_fallback() -> None:
    attempt = failed_attempt("refused", start=100.0, end=100.001)
    query = f.dns_query(ts=100.001 + 10.5)
    assert run([attempt, query]).finish() == []


def test_window_comes_from_policy() -> None:
    attempt = failed_attempt("refused", start=100.0, end=100.5)
    query = f.dns_query(ts=125.0, qname="late.example")
    context = Context(policy=Policy(fallback_window_s=30.0))
    findings = run([attempt, query], context).finish()
    assert [x.id for x in findings] == ["DA-FALLBACK-001"]
    evidence = findings[0].evidence
    assert evidence["window_s"] == 30.0
    assert evidence["delay_s"] == 25.0
    assert evidence["qnames"] == ["late.example"]
    # The default window (10 s) would end at 110.5: the same query is then no fallback.
    assert run([attempt, query]).finish() == []
    # And the policy's own end is at 130.5.
    beyond = f.dns_query(ts=130.75, qname="later.example")
    assert run([attempt, beyond], context).finish() == []


def test_query_stamped_before_the_attempt_but_seen_after_it_is_not_a_fallback() -> None:
    # Merged captures can go back in time: the attempt's connection event comes first,
    # then a query whose timestamp is before the attempt began.
    attempt = failed_attempt("refused", start=100.0, end=100.5)
    assert run([attempt, f.dns_query(ts=99.999999)]).finish() == []
    assert run([attempt, f.dns_query(ts=95.0)]).finish() == []
    assert [x.id for x in run([attempt, f.dns_query(ts=100.0)]).finish()] == ["DA-FALLBACK-001"]


def test_other_client_plaintext_does_not_count() -> None:
    attempt = failed_attempt("icmp_rejected", start=100.0, end=100.01, icmp="admin-prohibited")
    query = f.dns_query(ts=101.0, src="10.0.0.99")
    assert run([attempt, query]).finish() == []


def test_established_session_is_not_a_failure() -> None:
    events = f.dot_session_events(client_lengths=[147], server_lengths=[487], ts=100.0)
    events.insert(-1, f.dns_query(ts=100.5))
    assert run(events).finish() == []


def test_mid_stream_flow_is_not_an_attempt() -> None:
    """Oracle: MANIFEST note on ndpi/dot-android10-private-dns (mid-stream 853 flows)."""
    attempt = f.connection(
        outcome="closed_rst", start=100.0, end=100.5, ts=100.0, mid_stream=True,
        handshake_seen=False,
    )  # fmt: skip
    query = f.dns_query(ts=101.0)
    assert run([attempt, query]).finish() == []


def test_tls_alert_failure_mode_is_named() -> None:
    events = f.dot_session_events(version="TLSv1.2", ts=100.0, server_hello_seen=False)
    conn = events[-1]
    alert = f.alert(
        ts=100.01, src=f.SERVER, sport=853, dst=f.CLIENT, dport=40000, level=2,
        description=70, description_name="protocol_version", from_server=True,
    )  # fmt: skip
    events = [*events[:-1], alert, conn, f.dns_query(ts=101.0)]
    findings = run(events).finish()
    assert findings and findings[0].evidence["failures"] == ["tls_alert"]


def test_local_stub_queries_are_not_fallback_unless_policy_says_so() -> None:
    attempt = failed_attempt("refused", start=100.0, end=100.001, dst="127.0.0.53")
    query = f.dns_query(ts=101.0, dst="127.0.0.53", src=f.CLIENT)
    assert run([attempt, query]).finish() == []
    assert run([attempt, query], LOOPBACK_AS_NETWORK).finish()


def test_one_finding_per_client_and_server_with_all_attempts() -> None:
    events: list[Event] = []
    for i in range(3):
        events.append(failed_attempt("refused", start=100.0 + i * 20, end=100.01 + i * 20,
                                     sport=50000 + i))  # fmt: skip
        events.append(f.dns_query(ts=101.0 + i * 20, qname=f"n{i}.example"))
    detector = run(events)
    findings = detector.finish()
    assert len(findings) == 1
    assert findings[0].evidence["attempts"] == 3
    assert len(detector.sections()["fallback_events"]) == 3


def _fields(event: Event) -> dict[str, object]:
    import dataclasses

    return {field.name: getattr(event, field.name) for field in dataclasses.fields(event)}


# -- the window, end to end: captures through `dotaudit analyze` -------------------------
#
# README: a failed DoT attempt followed by plaintext DNS from the same client "within the
# policy window (default 10 s)"; the detector's docstring: from the attempt's first packet
# to fallback_window_s after its last. Timestamps are exact binary fractions so that each
# boundary is hit exactly after the trip through a pcap's microseconds.

ATTEMPT_START = 100.0
RESET_AT = 100.5
"""The refused attempt: SYN at 100.0, the server's RST at 100.5 (its last packet)."""
DROP_LAST_SYN = 103.0
"""The dropped attempt: SYN at 100.0 and its retransmits at 101.0 and 103.0."""
DOCUMENTED_WINDOW_S = 10.0
US = 0.000001


def analyze_capture(tmp_path: Path, packets: list[Any], *options: str) -> dict[str, Any]:
    from dotaudit.cli import main

    capture = pcapgen.write(tmp_path / "capture.pcap", packets)
    out = tmp_path / "report.json"
    assert main(["analyze", str(capture), "-q", "-o", str(out), "--fail-on", "none", *options]) == 0
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def attempt_then_query(failure: str, query_ts: float) -> list[Any]:
    if failure == "reset":
        attempt = pcapgen.dot_syn_reset(ATTEMPT_START, rst_after=RESET_AT - ATTEMPT_START)
    else:
        attempt = pcapgen.dot_syn_unanswered(ATTEMPT_START)
    return attempt + pcapgen.dns_udp_exchange("window.example", query_ts)


def attempt_end(failure: str) -> float:
    return RESET_AT if failure == "reset" else DROP_LAST_SYN


def fallback_findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["id"] == "DA-FALLBACK-001"]


@pytest.mark.parametrize("failure", ["reset", "drop"])
def test_plaintext_five_seconds_before_a_failed_attempt_is_not_a_fallback(
    tmp_path: Path, failure: str
) -> None:
    report = analyze_capture(tmp_path, attempt_then_query(failure, ATTEMPT_START - 5.0))
    ids = {f["id"] for f in report["findings"]}
    assert {"DA-LEAK-001", "DA-DOT-001"} <= ids, "the leak and the failed attempt are seen"
    assert fallback_findings(report) == []
    assert report["fallback_events"] == []


@pytest.mark.parametrize("failure", ["reset", "drop"])
@pytest.mark.parametrize(
    ("offset", "inside"),
    [
        (-US, False),  # just before the attempt's first packet
        (0.0, True),  # at its first packet
        (US, True),  # just after it
    ],
    ids=["just-before", "at", "just-after"],
)
def test_window_starts_at_the_attempts_first_packet(
    tmp_path: Path, failure: str, offset: float, inside: bool
) -> None:
    query_ts = ATTEMPT_START + offset
    report = analyze_capture(tmp_path, attempt_then_query(failure, query_ts))
    found = fallback_findings(report)
    assert bool(found) is inside, report["fallback_events"]
    if inside:
        assert found[0]["evidence"]["delay_s"] == pytest.approx(offset, abs=1e-9)
        assert found[0]["evidence"]["qnames"] == ["window.example"]


@pytest.mark.parametrize("failure", ["reset", "drop"])
@pytest.mark.parametrize(
    ("offset", "inside"),
    [(-US, True), (0.0, True), (US, False)],
    ids=["just-inside", "at", "just-outside"],
)
def test_window_ends_ten_seconds_after_the_attempts_last_packet(
    tmp_path: Path, failure: str, offset: float, inside: bool
) -> None:
    query_ts = attempt_end(failure) + DOCUMENTED_WINDOW_S + offset
    report = analyze_capture(tmp_path, attempt_then_query(failure, query_ts))
    found = fallback_findings(report)
    assert bool(found) is inside, report["fallback_events"]
    if inside:
        assert found[0]["evidence"]["window_s"] == DOCUMENTED_WINDOW_S
        (row,) = report["fallback_events"]
        assert row["attempt_end"] == attempt_end(failure)
        assert row["first_plaintext_ts"] == pytest.approx(query_ts, abs=1e-9)


@pytest.mark.parametrize(("offset", "inside"), [(0.0, True), (US, False)], ids=["at", "beyond"])
def test_policy_window_moves_the_end(tmp_path: Path, offset: float, inside: bool) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("fallback_window_s = 30\n")
    query_ts = RESET_AT + 30.0 + offset
    report = analyze_capture(
        tmp_path, attempt_then_query("reset", query_ts), "--policy", str(policy)
    )
    found = fallback_findings(report)
    assert bool(found) is inside
    if inside:
        assert found[0]["evidence"]["window_s"] == 30.0


# -- caps: what the detector keeps is bounded, and every cut is counted ------------------


def test_caps_are_the_documented_ones() -> None:
    assert fallback.MAX_PENDING == 20_000
    assert fallback.MAX_PENDING_PER_CLIENT == 64
    assert fallback.MAX_EVENTS == 5_000
    assert fallback.MAX_GROUPS == 10_000


def _attempts_then_queries(clients: int, per_client: int) -> list[Event]:
    """Failed attempts all open at once, then one query from every client in every window."""
    events: list[Event] = []
    for c in range(clients):
        for i in range(per_client):
            events.append(failed_attempt("refused", start=100.0 + i * 0.001, end=100.01 + i * 0.001,
                                         src=f"10.0.{c}.1", sport=50000 + i))  # fmt: skip
    for c in range(clients):
        events.append(f.dns_query(ts=101.0, src=f"10.0.{c}.1", qname=f"c{c}.example"))
    return events


def test_pending_attempts_at_the_cap_all_collect_their_queries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fallback, "MAX_PENDING", 4)
    detector = run(_attempts_then_queries(clients=2, per_client=2))
    findings = detector.finish()
    assert sorted(x.evidence["attempts"] for x in findings) == [2, 2]
    assert detector.caps() == {}


def test_pending_attempts_over_the_cap_are_cut_short_and_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fallback, "MAX_PENDING", 3)
    detector = run(_attempts_then_queries(clients=2, per_client=2))
    findings = detector.finish()
    # The attempt whose window ends first stopped collecting before the queries came.
    assert sorted(x.evidence["attempts"] for x in findings) == [1, 2]
    assert detector.caps() == {"fallback_attempts_cut_short": 1}
    assert {x.evidence["attempts_cut_short"] for x in findings} == {1}


def test_pending_attempts_per_client_over_the_cap_are_cut_short(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fallback, "MAX_PENDING_PER_CLIENT", 2)
    at_cap = run(_attempts_then_queries(clients=1, per_client=2))
    assert at_cap.finish()[0].evidence["attempts"] == 2 and at_cap.caps() == {}
    over = run(_attempts_then_queries(clients=1, per_client=3))
    assert over.finish()[0].evidence["attempts"] == 2
    assert over.caps() == {"fallback_attempts_cut_short": 1}


def test_the_oldest_pending_attempt_of_a_client_is_the_one_cut_short(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fallback, "MAX_PENDING_PER_CLIENT", 2)
    events = [
        failed_attempt("refused", start=start, end=start + 0.5, sport=50000 + i)
        for i, start in enumerate((100.0, 101.0, 102.0))
    ]
    detector = run([*events, f.dns_query(ts=103.0, qname="late.example")])
    rows = detector.sections()["fallback_events"]
    # Every window holds the query, but the oldest attempt stopped collecting before it.
    assert [row["attempt_start"] for row in rows] == [101.0, 102.0]
    assert detector.caps() == {"fallback_attempts_cut_short": 1}


def test_attempt_whose_window_ends_at_the_current_time_still_collects() -> None:
    # Capture time is already at the window's end (110.0) when the attempt completes: its
    # window is still open, so a query stamped exactly at its end counts.
    other_client = f.dns_query(ts=110.0, src="10.0.0.9")
    attempt = failed_attempt("refused", start=99.5, end=100.0)
    at_end = f.dns_query(ts=110.0, qname="end.example")
    detector = run([other_client, attempt, at_end])
    (finding,) = detector.finish()
    assert finding.evidence["qnames"] == ["end.example"]
    assert finding.client == f.CLIENT
    # A moment later the same attempt's window has closed: nothing comes after it.
    late = f.dns_query(ts=110.5, src="10.0.0.9")
    assert run([late, attempt, at_end]).finish() == []


def test_rows_over_the_cap_are_counted_and_findings_still_count_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fallback, "MAX_EVENTS", 2)
    at_cap = run(_attempts_then_queries(clients=1, per_client=2))
    at_cap.finish()
    assert len(at_cap.sections()["fallback_events"]) == 2 and at_cap.caps() == {}
    over = run(_attempts_then_queries(clients=1, per_client=3))
    findings = over.finish()
    assert len(over.sections()["fallback_events"]) == 2
    assert over.caps() == {"fallback_rows_full": 1}
    assert findings[0].evidence["attempts"] == 3  # the finding counts every fallback


def test_groups_over_the_cap_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fallback, "MAX_GROUPS", 2)
    assert len(run(_attempts_then_queries(clients=2, per_client=1)).finish()) == 2
    over = run(_attempts_then_queries(clients=3, per_client=1))
    findings = over.finish()
    assert len(findings) == 2
    assert over.caps() == {"fallback_groups_full": 1}
    assert {x.evidence["pairs_dropped"] for x in findings} == {1}


def test_closed_windows_leave_nothing_pending() -> None:
    """Attempts are decided as capture time passes their window, not kept to the end."""
    events: list[Event] = []
    for i in range(100):
        events.append(failed_attempt("refused", start=100.0 + i * 20, end=100.01 + i * 20,
                                     src=f"10.1.{i}.1"))  # fmt: skip
    events.append(f.dns_query(ts=100.0 + 100 * 20, src="10.9.9.9"))
    detector = run(events)
    assert detector.pending == {}  # decided as time moved on: no fallbacks, nothing kept
    assert detector.finish() == []


# -- end to end: a SYN flood to 853 with a few real fallbacks in it --------------------

FLOOD_SYNS = 16_000
FLOW_MEMCAP = 4 * 1024 * 1024
"""Scaled down with the tables below (bench/floods.py runs a million SYNs at the real
caps): about 5,000 SYN-only flows at 800 bytes each, so the flood passes it."""
TABLE_CAP = 1_000


def test_fallbacks_are_found_in_a_syn_flood_and_the_report_states_the_cuts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flows, "FLOW_MEMCAP", FLOW_MEMCAP)
    monkeypatch.setattr(dot_session_outcomes, "MAX_SESSIONS", TABLE_CAP)
    monkeypatch.setattr(dot_session_outcomes, "MAX_GROUPS", TABLE_CAP)
    monkeypatch.setattr(fallback, "MAX_PENDING", TABLE_CAP)
    real = ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
    packets: list[Any] = []
    for i, client in enumerate(real):
        start = 100.1 + i * 0.1  # inside the flood, which runs from 100 s for 8 s
        packets += pcapgen.dot_syn_unanswered(start, client=client, sport=51000 + i)
        packets += pcapgen.dns_udp_exchange(f"fell-back-{i}.example", start + 3.5,
                                            client=client, sport=41000 + i, qid=i + 1)  # fmt: skip
    late = "192.0.2.20"  # asks in plaintext only after its window: no fallback
    packets += pcapgen.dot_syn_unanswered(100.2, client=late, sport=52000)
    packets += pcapgen.dns_udp_exchange("too-late.example", 100.2 + 3.0 + 10.5, client=late,
                                        sport=42000)  # fmt: skip
    # The flood goes on after the real attempts, so that they are evicted, not ended by
    # the capture's end.
    flood = pcapgen.syn_flood(100.0, FLOOD_SYNS, rate=2_000.0)
    capture = pcapgen.write_with_raw(tmp_path / "flood.pcap", packets, flood)
    result = analyze_file(capture, Context())
    fallbacks = [x for x in result.findings if x.id == "DA-FALLBACK-001"]
    assert sorted(x.client or "" for x in fallbacks) == real
    for i, finding in enumerate(sorted(fallbacks, key=lambda x: x.client or "")):
        assert finding.evidence["qnames"] == [f"fell-back-{i}.example"]
        assert finding.evidence["failures"] == ["syn_unanswered"]
    # The cuts are stated: evicted flows, the emergencies, the tables that filled.
    anomalies = result.anomalies
    assert anomalies["flows_evicted"] > FLOOD_SYNS // 2
    assert anomalies["flows_evicted_syn_only"] == anomalies["flows_evicted"]
    assert anomalies["flow_memcap"] >= 1
    assert anomalies["dot_session_rows_full"] > 0
    assert anomalies["dot_session_groups_full"] > 0
    assert anomalies["fallback_attempts_cut_short"] > 0
    assert len(result.sections["dot_sessions"]) == TABLE_CAP


def test_fallback_row_and_finding_in_full() -> None:
    attempt = failed_attempt("refused", start=100.0, end=100.5, sport=40100)
    queries = [
        f.dns_query(ts=101.0, qname="a.example", dst="192.0.2.53"),
        f.dns_query(ts=102.0, qname="a.example", dst="192.0.2.53", transport="tcp"),
        f.dns_query(ts=103.0, qname=None, dst="192.0.2.53"),
        f.dns_query(ts=104.0, qname="b.example", dst="192.0.2.54"),
    ]
    assert isinstance(attempt, ConnectionSeen)
    detector = run([attempt, *queries])
    (row,) = detector.sections()["fallback_events"]
    assert row == {
        "file": f.FILE,
        "client": f.CLIENT,
        "dot_server": f.SERVER,
        "dot_port": 853,
        "failure": "reset",
        "failure_text": FAILURE_TEXT["reset"],
        "attempt_start": 100.0,
        "attempt_end": 100.5,
        "plaintext_server": ["192.0.2.53", "192.0.2.54"],
        "plaintext_transport": "udp",
        "first_plaintext_ts": 101.0,
        "delay_s": 1.0,
        "qnames": ["a.example", "b.example"],
        "qname_count": 2,
        "queries": 4,
        "same_names_repeated": True,
        "sni": None,
        "frames": sorted({attempt.first_frame, attempt.last_frame, *(q.frame for q in queries)}),
    }
    (finding,) = detector.finish()
    assert finding.evidence == {
        "attempts": 1,
        "failures": ["reset"],
        "failure_text": FAILURE_TEXT["reset"],
        "delay_s": 1.0,
        "plaintext_queries": 4,
        "plaintext_servers": ["192.0.2.53", "192.0.2.54"],
        "qnames": ["a.example", "b.example"],
        "window_s": 10.0,
    }
    assert finding.dedup_key == f"DA-FALLBACK-001|{f.FILE}|{f.CLIENT}|{f.SERVER}"
    assert (finding.client, finding.server, finding.file) == (f.CLIENT, f.SERVER, f.FILE)
    assert (finding.first_ts, finding.last_ts) == (100.0, 101.0)


def test_fallback_attempts_of_one_pair_share_a_finding() -> None:
    first = failed_attempt("refused", start=100.0, end=100.5, sport=40100)
    second = failed_attempt("syn_unanswered", start=200.0, end=203.0, sport=40101)
    q1 = f.dns_query(ts=100.25, qname="one.example")
    q2 = f.dns_query(ts=205.0, qname="two.example", dst="192.0.2.9")
    detector = run([first, q1, q2, second])
    rows = detector.sections()["fallback_events"]
    assert [r["plaintext_server"] for r in rows] == [f.SERVER, "192.0.2.9"]
    assert [r["same_names_repeated"] for r in rows] == [False, False]
    (finding,) = detector.finish()
    evidence = finding.evidence
    assert evidence["attempts"] == 2
    assert evidence["failures"] == ["reset", "syn_unanswered"]
    assert evidence["delay_s"] == 0.25
    assert evidence["plaintext_servers"] == sorted([f.SERVER, "192.0.2.9"])
    assert evidence["plaintext_queries"] == 2
    assert evidence["qnames"] == ["one.example"]
    assert (finding.first_ts, finding.last_ts) == (100.0, 205.0)


def test_fallback_failure_text_names_each_failure_mode() -> None:
    alert = [
        *f.dot_session_events(server_hello_seen=False, ts=100.0)[:-1],
        f.alert(description=40, description_name="handshake_failure", ts=100.01),
        f.dot_session_events(server_hello_seen=False, ts=100.0)[-1],
    ]
    # The hello and alert must belong to the same flow as the connection.
    alert[-1] = f.connection(
        **{**_fields(alert[-1]), "sport": alert[0].sport, "first_frame": alert[0].frame}
    )
    query = f.dns_query(ts=101.0)
    (row,) = run([*alert, query]).sections()["fallback_events"]
    assert (row["failure"], row["failure_text"]) == ("tls_alert", FAILURE_TEXT["tls_alert"])
    assert row["sni"] == "dns.quad9.net"


def test_fallback_query_at_the_attempt_start_and_window_end_counts() -> None:
    # Arriving after the attempt (pending path): both ends of the window are inside it.
    attempt = failed_attempt("refused", start=100.0, end=100.5)
    at_end = f.dns_query(ts=110.5, qname="end.example")
    (finding,) = run([attempt, at_end]).finish()
    assert finding.evidence["qnames"] == ["end.example"]
    early = failed_attempt("refused", start=100.0, end=100.5, sport=40200)
    at_start = f.dns_query(ts=100.0, qname="start.example")
    # The query is seen first (by ts order in the capture), the attempt later.
    (finding,) = run([at_start, early]).finish()
    assert finding.evidence["qnames"] == ["start.example"]


def test_fallback_events_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fallback, "MAX_EVENTS", 2)
    events: list[Event] = []
    for i in range(3):
        events += [
            failed_attempt("refused", start=100.0 + 20 * i, end=100.5 + 20 * i, sport=41000 + i),
            f.dns_query(ts=101.0 + 20 * i),
        ]
    assert len(run(events).sections()["fallback_events"]) == 2


def test_fallback_delay_to_the_microsecond_and_the_finding_frames() -> None:
    attempt = failed_attempt("refused", start=100.0, end=100.5)
    query = f.dns_query(ts=101.2345678)
    detector = run([attempt, query])
    (row,) = detector.sections()["fallback_events"]
    assert row["delay_s"] == 1.234568
    (finding,) = detector.finish()
    assert finding.frames == tuple(row["frames"])


def test_fallback_row_frames_sample_fifty_queries() -> None:
    attempt = failed_attempt("refused", start=100.0, end=100.5)
    queries = [f.dns_query(ts=101.0 + i * 0.01) for i in range(60)]
    assert isinstance(attempt, ConnectionSeen)
    (row,) = run([attempt, *queries]).sections()["fallback_events"]
    assert row["queries"] == 60
    assert set(row["frames"]) == {
        attempt.first_frame,
        attempt.last_frame,
        *(q.frame for q in queries[:50]),
    }


def test_fallback_row_samples_the_first_qname_sample_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample's length is QNAME_SAMPLE's, whatever it is set to (its default equals
    the general sample's, so only another value shows which one is used)."""
    monkeypatch.setattr(fallback, "QNAME_SAMPLE", 3)
    attempt = failed_attempt("refused", start=100.0, end=100.5)
    queries = [f.dns_query(ts=101.0 + i * 0.01, qname=f"n{i}.example") for i in range(5)]
    (row,) = run([attempt, *queries]).sections()["fallback_events"]
    assert row["qnames"] == ["n0.example", "n1.example", "n2.example"]
    assert row["qname_count"] == 5


@pytest.mark.parametrize("names", [1000, 1001])
def test_fallback_row_counts_a_thousand_distinct_names_then_a_lower_bound(names: int) -> None:
    attempt = failed_attempt("refused", start=100.0, end=100.5)
    queries = [f.dns_query(ts=101.0 + i * 0.001, qname=f"n{i}.example") for i in range(names)]
    (row,) = run([attempt, *queries]).sections()["fallback_events"]
    assert (row["queries"], row["qname_count"]) == (names, 1000)
    assert len(row["qnames"]) == fallback.QNAME_SAMPLE == 20
    if names <= 1000:
        assert row["same_names_repeated"] is False
        assert "qname_count_is_lower_bound" not in row
    else:
        # Every name differs; past the names it tracks the row cannot say whether one
        # was asked again, and says that its count is a lower bound.
        assert "same_names_repeated" not in row
        assert row["qname_count_is_lower_bound"] is True


@pytest.mark.parametrize("servers", [20, 21])
def test_fallback_lists_twenty_plaintext_servers_per_attempt_and_finding(servers: int) -> None:
    assert fallback.MAX_SERVERS == 20
    first = failed_attempt("refused", start=100.0, end=100.5, sport=40100)
    asked = [f"192.0.2.{n}" for n in range(1, servers + 1)]
    queries = [f.dns_query(ts=101.0 + n * 0.01, dst=server) for n, server in enumerate(asked)]
    detector = run([first, *queries])
    (row,) = detector.sections()["fallback_events"]
    assert row["plaintext_server"] == sorted(asked[:20])
    (finding,) = detector.finish()
    assert finding.evidence["plaintext_servers"] == sorted(asked[:20])
    # A second attempt's servers join the finding's list while it has room.
    second = failed_attempt("refused", start=200.0, end=200.5, sport=40101)
    later = f.dns_query(ts=201.0, dst="198.51.100.53")
    (finding,) = run([first, *queries[:19], second, later]).finish()
    assert finding.evidence["plaintext_servers"] == sorted([*asked[:19], "198.51.100.53"])
    (finding,) = run([first, *queries[:20], second, later]).finish()
    assert finding.evidence["plaintext_servers"] == sorted(asked[:20])


def test_fallback_finding_speaks_for_the_first_attempt_even_when_decided_last() -> None:
    # The long attempt comes first but its window closes last; the short one, seen
    # second, is decided at once (its window closed already). The finding's failure and
    # names are still the first attempt's.
    query = f.dns_query(ts=155.0, qname="both.example")
    long_reset = failed_attempt("refused", start=100.0, end=200.0, sport=40100)
    short_drop = failed_attempt("syn_unanswered", start=150.0, end=151.0, sport=40101)
    later = f.dns_query(ts=205.0, qname="long.example")
    detector = run([query, long_reset, short_drop, later])
    (finding,) = detector.finish()
    assert finding.evidence["attempts"] == 2
    assert finding.evidence["failures"] == ["reset", "syn_unanswered"]
    assert finding.evidence["failure_text"] == FAILURE_TEXT["reset"]
    assert finding.evidence["qnames"] == ["both.example", "long.example"]
    rows = detector.sections()["fallback_events"]
    assert [r["failure"] for r in rows] == ["reset", "syn_unanswered"]


def test_fallback_findings_come_in_the_order_their_first_attempts_were_seen() -> None:
    # The later client's attempt is seen first but decided last (its window is longer),
    # and its address sorts last: neither decision order nor (file, client, server) order
    # is the order of first attempts.
    late_client = failed_attempt("refused", src="10.0.0.9", start=100.0, end=200.0, sport=40100)
    early_client = failed_attempt("refused", src="10.0.0.3", start=150.0, end=151.0, sport=40101)
    queries = [f.dns_query(src=client, ts=155.0) for client in ("10.0.0.9", "10.0.0.3")]
    findings = run([*queries, late_client, early_client]).finish()
    assert [x.client for x in findings] == ["10.0.0.9", "10.0.0.3"]


def test_every_attempt_cut_short_and_every_row_past_the_cap_is_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fallback, "MAX_PENDING_PER_CLIENT", 1)
    cut = run(_attempts_then_queries(clients=1, per_client=3))
    assert cut.finish()[0].evidence["attempts_cut_short"] == 2
    assert cut.caps() == {"fallback_attempts_cut_short": 2}
    monkeypatch.setattr(fallback, "MAX_PENDING_PER_CLIENT", 64)
    monkeypatch.setattr(fallback, "MAX_EVENTS", 1)
    full = run(_attempts_then_queries(clients=1, per_client=3))
    assert full.finish()[0].evidence["attempts"] == 3
    assert full.caps() == {"fallback_rows_full": 2}


def test_decided_attempts_leave_room_under_the_pending_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fallback, "MAX_PENDING", 2)
    # One attempt whose window the later attempts' time has passed: decided, not pending.
    events: list[Event] = [
        failed_attempt("refused", start=100.0, end=100.01, src="10.0.9.1"),
        f.dns_query(ts=101.0, src="10.0.9.1"),
    ]
    for n, client in enumerate(("10.0.1.1", "10.0.2.1", "10.0.3.1")):
        events.append(failed_attempt("refused", start=200.0 + n * 0.001, end=200.01, src=client))
    queries = [f.dns_query(ts=201.0, src=f"10.0.{n}.1") for n in (1, 2, 3)]
    two = run([*events[:4], *queries[:2]])
    assert sorted(x.evidence["attempts"] for x in two.finish()) == [1, 1, 1]
    assert two.caps() == {}
    three = run([*events, *queries])
    assert len(three.finish()) == 3  # the first of the three stopped collecting early
    assert three.caps() == {"fallback_attempts_cut_short": 1}


def test_an_attempt_cut_short_is_decided_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fallback, "MAX_PENDING_PER_CLIENT", 1)
    # The first attempt is cut short by the second (one pending attempt per client); its
    # place in the queue of closing windows is still there when capture time passes it.
    events: list[Event] = [
        failed_attempt("refused", start=100.0, end=100.01, sport=40100),
        f.dns_query(ts=100.005, qname="first.example"),
        failed_attempt("refused", start=100.001, end=100.02, sport=40101),
        f.dns_query(ts=200.0, src="10.9.9.9"),  # another client's: time moves on
    ]
    detector = run(events)
    (finding,) = detector.finish()
    assert len(detector.sections()["fallback_events"]) == 2
    assert finding.evidence["attempts"] == 2
    assert detector.caps() == {"fallback_attempts_cut_short": 1}
