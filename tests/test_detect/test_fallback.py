"""Fallback detector: a failed DoT attempt followed by plaintext DNS from the same client."""

from __future__ import annotations

from dotaudit.detect.base import Context
from dotaudit.detect.fallback import FallbackDetector
from dotaudit.model.events import Event
from dotaudit.model.findings import Severity
from dotaudit.model.policy import Policy
from tests import factories as f

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
    attempt = failed_attempt("refused", start=100.0, end=100.001)
    query = f.dns_query(ts=125.0)
    context = Context(policy=Policy(fallback_window_s=30.0))
    assert run([attempt, query], context).finish()


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
