"""ECH/ESNI classification. Oracles: the corpus manifest (Zeek's tls13-ech trace is real
ECH with outer SNI cloudflare-ech.com; nDPI's tls_ech is ECH next to the real site
name; nDPI flags ESNI next to an SNI as "TLS Susp ESNI Usage")."""

from __future__ import annotations

import pytest

from dotaudit.detect import base, ech
from dotaudit.detect.base import Context
from dotaudit.detect.ech import EchDetector, classify_ech
from dotaudit.model.events import Event
from dotaudit.model.findings import MAX_FRAMES, Confidence, Finding, Severity
from dotaudit.model.policy import Policy
from tests.conftest import corpus_path
from tests.factories import client_hello, fed_detector, quic_initial, run_detectors


def _run(events: list[Event], context: Context | None = None) -> list[Finding]:
    return fed_detector(EchDetector, events, context).finish()


def test_classify() -> None:
    assert classify_ech("cloudflare-ech.com", True, False) == "ech"
    assert classify_ech("Cloudflare-ECH.com.", True, False) == "ech"
    assert classify_ech("www.example.com", True, False) == "grease_likely"
    assert classify_ech(None, True, False) == "ech_unverified"
    assert classify_ech(None, False, True) == "esni"
    assert classify_ech("a.example", False, True) == "esni_with_sni"
    assert classify_ech("a.example", False, False) is None


def test_aggregates_per_client_and_kind() -> None:
    findings = _run(
        [
            client_hello(sni="cloudflare-ech.com", ech=True, ts=1.0, dport=443),
            client_hello(sni="cloudflare-ech.com", ech=True, ts=3.0, dport=443),
            client_hello(sni="www.example.com", ech=True, ts=2.0, dport=443),
            quic_initial(sni="www.example.com", ech=True, ts=4.0, dport=443, alpn=("h3",)),
            client_hello(sni="plain.example", ech=False, dport=443),
        ]
    )
    by_kind = {f.evidence["kind"]: f for f in findings}
    assert set(by_kind) == {"ech", "grease_likely"}
    real = by_kind["ech"]
    assert real.evidence["hellos"] == 2 and real.first_ts == 1.0 and real.last_ts == 3.0
    assert real.confidence == Confidence.HIGH and len(real.frames) == 2
    grease = by_kind["grease_likely"]
    assert grease.evidence["transports"] == ["quic", "tls"]
    assert grease.confidence == Confidence.MEDIUM
    assert "GREASE" in grease.title
    assert all(f.id == "DA-ECH-001" and f.severity == Severity.INFO for f in findings)
    assert real.dedup_key != grease.dedup_key


def test_no_ech_no_finding() -> None:
    assert _run([client_hello(), quic_initial()]) == []


def test_override() -> None:
    policy = Policy(severity_overrides={"DA-ECH-001": Severity.LOW})
    (finding,) = run_detectors(
        [client_hello(sni=None, esni=True)], policy, only=EchDetector
    ).findings
    assert finding.severity == Severity.LOW


def _corpus(relative: str) -> list[Finding]:
    from dotaudit.pipeline import CaptureRun

    return _run(list(CaptureRun(corpus_path(relative)).events()))


def test_corpus_real_ech() -> None:
    # Zeek ssl.log: 2 connections 192.168.20.65 -> 162.159.138.85:443, SNI cloudflare-ech.com.
    (finding,) = _corpus("zeek/tls13-ech/tls13-ech.pcap")
    assert finding.evidence["kind"] == "ech" and finding.evidence["hellos"] == 2
    assert finding.client == "192.168.20.65" and finding.server == "162.159.138.85"


def test_corpus_grease_looking_ech() -> None:
    # nDPI: ECH 0xfe0d with Hostname/SNI performance.radar.cloudflare.com.
    (finding,) = _corpus("ndpi/tls-ech/tls_ech.pcapng")
    assert finding.evidence["kind"] == "grease_likely"
    assert finding.evidence["outer_sni"] == ["performance.radar.cloudflare.com"]


def test_corpus_esni() -> None:
    # nDPI: 3 ESNI hellos without SNI; 2 ESNI hellos with joke SNIs ("Susp ESNI Usage").
    (finding,) = _corpus("ndpi/tls-esni/encrypted_sni.pcap")
    assert finding.evidence["kind"] == "esni" and finding.evidence["hellos"] == 3
    (both,) = _corpus("ndpi/tls-esni-and-sni/tls_esni_sni_both.pcap")
    assert both.evidence["kind"] == "esni_with_sni" and both.evidence["hellos"] == 2


def test_ech_finding_in_full() -> None:
    first = client_hello(sni="cloudflare-ech.com", ech=True, dst="192.0.2.1", ts=10.0)
    second = quic_initial(sni="Cloudflare-ECH.com.", ech=True, dst="192.0.2.1", ts=12.0)
    detector = EchDetector(Context())
    for event in (first, second):
        detector.on_event(event)
    (finding,) = detector.finish()
    assert finding.evidence == {
        "kind": "ech",
        "hellos": 2,
        "outer_sni": ["cloudflare-ech.com", "Cloudflare-ECH.com."],
        "servers": ["192.0.2.1"],
        "server_count": 1,
        "transports": ["quic", "tls"],
    }
    assert finding.title == "Encrypted Client Hello in use (outer SNI is an ECH public name)"
    assert finding.confidence is Confidence.HIGH
    assert finding.dedup_key == "DA-ECH-001|10.0.0.2|ech"
    assert (finding.client, finding.server, finding.file) == ("10.0.0.2", "192.0.2.1", "test.pcap")
    assert (finding.first_ts, finding.last_ts) == (10.0, 12.0)
    assert finding.frames == (first.frame, second.frame)


def test_ech_to_several_servers_names_none_and_no_sni_is_not_sampled() -> None:
    hellos = [
        client_hello(sni=None, ech=True, dst="192.0.2.1"),
        client_hello(sni=None, ech=True, dst="192.0.2.2"),
    ]
    (finding,) = _run(list(hellos))
    assert finding.server is None
    assert finding.evidence["outer_sni"] == [] and finding.evidence["server_count"] == 2
    assert finding.evidence["kind"] == "ech_unverified"
    assert finding.confidence is Confidence.MEDIUM


def test_quic_esni_flag_is_not_read() -> None:
    # QUIC has no ESNI: an Initial's ECH flag decides alone.
    assert _run([quic_initial(sni=None, ech=False)]) == []


def test_ech_groups_cap_counts_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ech, "MAX_GROUPS", 1)
    events: list[Event] = [
        client_hello(sni=None, ech=True),
        client_hello(sni=None, ech=True, src="10.0.0.3"),
        client_hello(sni=None, esni=True),
    ]
    detector = fed_detector(EchDetector, events)
    (finding,) = detector.finish()
    assert finding.evidence["groups_dropped"] == 2
    assert detector.caps() == {"ech_groups_full": 2}
    at_cap = fed_detector(EchDetector, events[:1])
    assert "groups_dropped" not in at_cap.finish()[0].evidence
    assert at_cap.caps() == {}


def test_ech_frames_stop_at_the_cap() -> None:
    hellos = [client_hello(sni=None, ech=True) for _ in range(MAX_FRAMES + 2)]
    (finding,) = _run(list(hellos))
    assert finding.frames == tuple(h.frame for h in hellos[:MAX_FRAMES])
    assert finding.evidence["hellos"] == MAX_FRAMES + 2


def test_ech_frame_sample_keeps_the_first_hellos() -> None:
    hellos = [client_hello(sni=None, ech=True, frame=1000 + i) for i in range(MAX_FRAMES)]
    late = client_hello(sni=None, ech=True, frame=1)  # e.g. from a later file
    (finding,) = _run([*hellos, late])
    assert 1 not in finding.frames


def test_ech_documented_sample_and_tracking_caps() -> None:
    assert (ech.SAMPLE, ech.TRACK) == (20, 1000)


@pytest.mark.parametrize("distinct", [4, 5, 6])
def test_ech_group_lists_a_sample_and_counts_servers_up_to_its_tracking_cap(
    monkeypatch: pytest.MonkeyPatch, distinct: int
) -> None:
    """Below, at and past the tracking cap (5 here): the sample is the first SAMPLE
    values, the server count exact up to TRACK and a lower bound past it."""
    monkeypatch.setattr(ech, "SAMPLE", 3)
    monkeypatch.setattr(ech, "TRACK", 5)
    hellos = [
        client_hello(sni=f"site{i}.example", ech=True, dst=f"192.0.2.{i + 1}")
        for i in range(distinct)
    ]
    (finding,) = _run(list(hellos))
    evidence = finding.evidence
    assert evidence["outer_sni"] == ["site0.example", "site1.example", "site2.example"]
    assert evidence["servers"] == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert evidence["server_count"] == min(distinct, 5)
    assert evidence.get("server_count_is_lower_bound", False) is (distinct > 5)


def test_ech_outer_snis_are_remembered_up_to_the_tracking_cap_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outer SNIs past TRACK are not remembered, so they leave the run's name budget to
    the rest: of a budget of TRACK + 2, the four SNIs and the one server leave one name,
    which the fifth and sixth SNIs do not take."""
    monkeypatch.setattr(ech, "TRACK", 4)
    monkeypatch.setattr(base, "TRACK_BUDGET", 6)
    hellos = [client_hello(sni=f"site{i}.example", ech=True) for i in range(6)]
    detector = fed_detector(EchDetector, list(hellos))
    (finding,) = detector.finish()
    assert finding.evidence["server_count"] == 1
    assert detector.caps() == {}


@pytest.mark.parametrize(
    ("varied", "expected_untracked"), [("sni", 3), ("dst", 3)], ids=["outer SNIs", "servers"]
)
def test_ech_names_draw_on_the_run_budget_and_count_what_it_refused(
    monkeypatch: pytest.MonkeyPatch, varied: str, expected_untracked: int
) -> None:
    """Both samples remember from the one budget of the run: with 3 names left, five
    hellos of distinct outer SNIs (or servers) leave three untracked."""
    monkeypatch.setattr(base, "TRACK_BUDGET", 3)
    hellos = [
        client_hello(ech=True, **{"sni": "www.example.com", "dst": "192.0.2.1", varied: value})
        for value in (
            [f"site{i}.example" for i in range(5)]
            if varied == "sni"
            else [f"192.0.2.{i + 1}" for i in range(5)]
        )
    ]
    detector = fed_detector(EchDetector, list(hellos))
    detector.finish()
    assert detector.caps() == {"ech_values_untracked": expected_untracked}
