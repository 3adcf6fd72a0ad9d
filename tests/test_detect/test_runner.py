"""The detector runner: routing by event type, and policy severity overrides applied once,
after every detector finished, to every finding ID the detectors make."""

from __future__ import annotations

import gc
import re
import weakref
from collections.abc import Iterable

import pytest

from dotaudit.detect import base, leak, runner
from dotaudit.detect.base import Context
from dotaudit.detect.doh_doq import DohDoqDetector
from dotaudit.detect.leak import PlaintextLeakDetector
from dotaudit.detect.local_names import LocalNamesDetector
from dotaudit.detect.registry import DETECTORS
from dotaudit.model.events import Event, HttpRequestSeen
from dotaudit.model.findings import CATALOGUE, Finding, Severity
from dotaudit.model.policy import ApprovedResolver, Policy, load_policy
from dotaudit.pipeline import analyze, analyze_file
from tests import factories as f
from tests.conftest import ROOT

DETECTOR_IDS = frozenset(
    i for i in CATALOGUE if not i.startswith(("DA-PROBE-", "DA-DDR-", "DA-NET-"))
)
"""Every finding ID ``analyze`` can make (the probe's, discovery's and the network
survey's are made by ``probe``)."""
APPROVED_ELSEWHERE = (ApprovedResolver("203.0.113.53"),)
"""Approves a resolver no test session uses, so that every session is DA-POLICY-001."""
OVERRIDES_POLICY = ROOT / "tests" / "policies" / "severity-overrides.toml"


def _other_severity(natural: Severity) -> Severity:
    return Severity.LOW if natural is Severity.HIGH else Severity.HIGH


def _h2c_doh_request() -> HttpRequestSeen:
    return HttpRequestSeen(
        file=f.FILE, frame=f.next_frame(), ts=f.TS, src=f.CLIENT, sport=40500,
        dst="192.0.2.80", dport=80, transport="tcp", method="GET", authority="doh.example",
        path="/dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB",
        content_type=None, stream=1, h2c=True,
    )  # fmt: skip


def every_finding_id_events() -> list[Event]:
    """Events from which the registered detectors make one finding of every ID."""
    split_session = f.dot_session_events(
        client_lengths=[61, 70], server_lengths=[93, 140], ts=100.0, cport=41000
    )
    events: list[Event] = [
        f.dns_query(ts=10.0),  # DA-LEAK-001
        f.dns_query(ts=10.0, transport="tcp", sport=40100),  # DA-LEAK-002
        f.dns_query(ts=10.0, dst="127.0.0.53"),  # DA-LEAK-003
        f.dns_query(ts=10.0, edns=f.edns(padding=83)),  # DA-LEAK-004
        f.dns_query(
            ts=10.0, service="mdns", dport=5353, dst="224.0.0.251", qname="printer.example"
        ),  # DA-LEAK-005
        f.dns_query(ts=10.0, edns=f.edns(ecs="192.0.2.0/24")),  # DA-LEAK-006
        # An unpadded established session (DA-DOT-006, DA-PAD-001, DA-SNI-001,
        # DA-POLICY-001) with a plaintext query during it (DA-LEAK-007).
        *split_session[:-1],
        f.dns_query(ts=100.5, dst="192.0.2.53"),
        split_session[-1],
        *f.dot_session_events(
            client_lengths=[147], server_lengths=[487], server="1.1.1.1", ts=110.0
        ),  # DA-PAD-002
        *f.dot_session_events(version="TLSv1.1", server="198.51.100.11", ts=120.0),  # DOT-002
        *f.dot_session_events(
            version="TLSv1.2",
            server="198.51.100.12",
            ts=130.0,
            sni=None,  # DA-DOT-004
            certificates=[f.certificate(self_signed=True)],  # DA-DOT-005
        ),  # DA-DOT-003
        # A refused attempt and plaintext right after: DA-DOT-001, DA-FALLBACK-001.
        f.connection(
            outcome="refused",
            handshake_seen=False,
            ts=200.0,
            start=200.0,
            end=200.001,
            sport=42000,
            dst="198.51.100.20",
        ),
        f.dns_query(ts=201.0, qname="fallback.example"),
        f.client_hello(dst="9.9.9.9", dport=443, sni="dns.quad9.net", alpn=("h2",)),  # DOH-001
        _h2c_doh_request(),  # DA-DOH-002
        f.quic_initial(),  # DA-DOQ-001
        f.client_hello(sni="cloudflare-ech.com", ech=True, dport=443),  # DA-ECH-001
    ]
    return events


def _run(policy: Policy) -> list[Finding]:
    return f.run_detectors(every_finding_id_events(), policy).findings


def test_the_events_make_every_finding_id_at_its_natural_severity() -> None:
    findings = _run(Policy(approved_dot=APPROVED_ELSEWHERE))
    assert {x.id for x in findings} == DETECTOR_IDS
    for finding in findings:
        if finding.id != "DA-DOT-005":  # its issuer-change hint alone is medium
            assert finding.severity is CATALOGUE[finding.id].severity, finding.id


def test_an_override_applies_to_every_finding_of_every_id() -> None:
    overrides = {i: _other_severity(CATALOGUE[i].severity) for i in DETECTOR_IDS}
    policy = Policy(approved_dot=APPROVED_ELSEWHERE, severity_overrides=overrides)
    findings = _run(policy)
    assert {x.id for x in findings} == DETECTOR_IDS
    for finding in findings:
        assert finding.severity is overrides[finding.id], finding.id


def test_ids_without_an_override_keep_their_severity() -> None:
    policy = Policy(
        approved_dot=APPROVED_ELSEWHERE, severity_overrides={"DA-LEAK-001": Severity.INFO}
    )
    by_id = {x.id: x.severity for x in _run(policy)}
    assert by_id.pop("DA-LEAK-001") is Severity.INFO
    assert by_id == {x.id: x.severity for x in _run(Policy(approved_dot=APPROVED_ELSEWHERE))
                     if x.id != "DA-LEAK-001"}  # fmt: skip


def test_detectors_report_natural_severities_and_the_runner_overrides_them() -> None:
    policy = Policy(severity_overrides={"DA-LEAK-001": Severity.LOW})
    detector = f.fed_detector(PlaintextLeakDetector, [f.dns_query()], policy)
    assert [x.severity for x in detector.finish()] == [Severity.HIGH]
    result = f.run_detectors([f.dns_query()], policy, only=PlaintextLeakDetector)
    assert [x.severity for x in result.findings] == [Severity.LOW]


def test_overrides_are_applied_once_per_analyzed_file(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    apply = runner.apply_severity_overrides

    def counting(findings: Iterable[Finding], policy: Policy) -> list[Finding]:
        calls.append(1)
        return apply(findings, policy)

    monkeypatch.setattr(runner, "apply_severity_overrides", counting)
    policy = load_policy(OVERRIDES_POLICY)
    result = analyze_file(ROOT / "pcaps" / "04-fallback.pcap", Context(policy=policy))
    assert len(calls) == 1
    overridden = [x for x in result.findings if x.id in policy.severity_overrides]
    assert overridden
    assert all(x.severity is policy.severity_overrides[x.id] for x in overridden)


def test_no_detector_reads_the_severity_overrides() -> None:
    """Policy is applied in one place: a detector that looked overrides up again would
    make the policy's meaning depend on which detector made the finding."""
    readers = [
        path.name
        for path in (ROOT / "dotaudit" / "detect").glob("*.py")
        if re.search(r"severity_overrides|apply_severity_overrides", path.read_text())
    ]
    assert readers == ["runner.py"]


def test_sample_policy_overrides_fallback_and_leaks_on_the_samples() -> None:
    """The overrides policy under tests/ on the sample captures: fallback and every leak
    ID it names come out at the policy's severity, the others at their own."""
    policy = load_policy(OVERRIDES_POLICY)
    assert {"DA-FALLBACK-001", "DA-LEAK-001", "DA-LEAK-002"} <= set(policy.severity_overrides)
    report = analyze(sorted((ROOT / "pcaps").glob("*.pcap")), Context(policy=policy))
    ids = {x.id for x in report.findings}
    assert {"DA-FALLBACK-001", "DA-LEAK-001", "DA-LEAK-002"} <= ids
    for finding in report.findings:
        expected = policy.severity_overrides.get(finding.id, CATALOGUE[finding.id].severity)
        if finding.id != "DA-DOT-005":
            assert finding.severity is expected, finding.id


def test_routing_sends_each_event_type_only_to_its_subscribers() -> None:
    detection = runner.DetectorRunner(Context(), (PlaintextLeakDetector,))
    leak = detection.detectors[0]
    assert isinstance(leak, PlaintextLeakDetector)
    detection.feed(f.client_hello())  # not a type the leak detector reads
    detection.feed(f.dns_query())
    assert len(leak.pairs) == 1


def test_the_detectors_of_one_run_remember_names_from_one_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(base, "TRACK_BUDGET", 3)
    plaintext = [f.dns_query(qname=f"n{i}.example") for i in range(3)]
    over_mdns = f.dns_query(qname="www.example.org", service="mdns", dport=5353, dst="224.0.0.251")
    context = Context()
    detectors = (PlaintextLeakDetector, LocalNamesDetector)
    first = runner.DetectorRunner(context, detectors)
    for event in (*plaintext, over_mdns):
        first.feed(event)
    assert first.finish().caps == {"local_names_untracked": 1}  # the leak took all three
    second = runner.DetectorRunner(context, detectors)  # a new run: a new budget
    second.feed(over_mdns)
    assert second.finish().caps == {}


def test_a_flow_is_kept_whole_when_one_detector_wants_it() -> None:
    doh = f.client_hello(dst="1.1.1.1", dport=443, sni="cloudflare-dns.com", alpn=("h2",))
    web = f.client_hello(dst="93.184.216.34", dport=443, sni="example.com", alpn=("h2",))
    every = runner.DetectorRunner(Context())
    assert every.keeps_flow(doh) and every.keeps_flow(f.quic_initial())
    assert not every.keeps_flow(web)
    # Without the one detector that counts a flow's packets, no flow is kept whole.
    others = tuple(d for d in DETECTORS if d is not DohDoqDetector)
    assert not runner.DetectorRunner(Context(), others).keeps_flow(doh)


def test_finishing_lets_go_of_the_stage_and_every_detector_once_their_results_are_out() -> None:
    """The peak of a run is about the larger of the detectors' state and the report, not
    their sum: each part is let go as soon as what it found is out."""
    detection = runner.DetectorRunner(Context())
    for event in (*f.dot_session_events(), f.dns_query(qname="leaked.example")):
        detection.feed(event)
    parts = [weakref.ref(d) for d in detection.detectors]
    assert detection._stage is not None
    parts.append(weakref.ref(detection._stage))
    result = detection.finish()
    gc.collect()
    assert [part() for part in parts] == [None] * len(parts)
    # ... and what they found is all there, the leak and the session's row.
    assert "DA-LEAK-001" in {x.id for x in result.findings}
    assert len(result.sections["dot_sessions"]) == 1


def test_a_spent_runner_refuses_to_finish_again() -> None:
    """Its detectors are gone: a second finish (a retried task, say) must fail loudly
    rather than report nothing found."""
    detection = runner.DetectorRunner(Context())
    detection.feed(f.dns_query(qname="leaked.example"))
    assert detection.finish().findings
    with pytest.raises(RuntimeError, match="finishes once"):
        detection.finish()


def test_a_cap_reported_by_two_detectors_of_a_run_is_summed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(leak, "MAX_PAIRS", 1)
    detection = runner.DetectorRunner(Context(), (PlaintextLeakDetector, PlaintextLeakDetector))
    for client in ("10.0.0.2", "10.0.0.3"):
        detection.feed(f.dns_query(src=client))
    # Each detector kept the first client's pair and turned the second one away.
    assert detection.finish().caps == {"plaintext_pairs_full": 2}
