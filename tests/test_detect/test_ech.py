"""ECH/ESNI classification. Oracles: the corpus manifest (Zeek's tls13-ech trace is real
ECH with outer SNI cloudflare-ech.com; nDPI's tls_ech is ECH next to the real site
name; nDPI flags ESNI next to an SNI as "TLS Susp ESNI Usage")."""

from __future__ import annotations

import pytest

from dotaudit.detect import ech
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
    (finding,) = _run(events)
    assert finding.evidence["groups_dropped"] == 2
    assert "groups_dropped" not in _run(events[:1])[0].evidence


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
