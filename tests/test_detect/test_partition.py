"""Cutting events by client: every detector must judge a share as one run judges all.

The oracle is the single run over every event (``analyze``'s own path): each detector
over shares cut by ``client_of`` and finished with the merged shared facts must give the
same findings and rows, for the sample captures, the benchmark mix, and events made to
cross shares (a server seen by clients that land in different shares).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from dotaudit.cluster.tasks import client_share
from dotaudit.detect.base import Context, Detector
from dotaudit.detect.dot_cert import DotCertDetector
from dotaudit.detect.dot_session_outcomes import DotSessionOutcomesDetector
from dotaudit.detect.partition import SHARED_EVENT_TYPES, client_of
from dotaudit.detect.registry import DETECTORS
from dotaudit.detect.runner import Detection, DetectorRunner, merge_shared_facts, run_detectors
from dotaudit.model.events import (
    AnomalySeen,
    DnsMessageSeen,
    Event,
    TlsAlertSeen,
    TlsCertificateSeen,
    TlsClientHelloSeen,
    TlsServerHelloSeen,
)
from dotaudit.model.report import combined_sections
from dotaudit.pipeline import CaptureRun
from tests.conftest import ROOT
from tests.factories import certificate, connection, dot_session_events

SAMPLES = sorted((ROOT / "pcaps").glob("*.pcap*"))


def _canonical(detection: Detection) -> tuple[list[str], dict[str, list[str]]]:
    findings = sorted(json.dumps(f.to_dict(), sort_keys=True) for f in detection.findings)
    sections = {
        name: sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)
        for name, rows in detection.sections.items()
    }
    return findings, sections


def _by_shares(
    events: Sequence[Event],
    shares: int,
    detectors: Sequence[type[Detector]] = DETECTORS,
    *,
    share_facts: bool = True,
) -> Detection:
    runners = [DetectorRunner(Context(), detectors) for _ in range(shares)]
    for event in events:
        if type(event) in SHARED_EVENT_TYPES:
            runners[client_share(client_of(event), shares)].feed(event)
    facts = merge_shared_facts([r.shared_facts() for r in runners], detectors)
    parts = [r.finish(facts if share_facts else None) for r in runners]
    return Detection(
        [f for p in parts for f in p.findings], combined_sections(p.sections for p in parts)
    )


def _events(path: Path) -> list[Event]:
    return list(CaptureRun(path, hash_input=False).events())


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.name)
def test_each_detector_judges_shares_as_one_run(
    detector: type[Detector], mixed_capture: Path
) -> None:
    events = [e for path in SAMPLES for e in _events(path)] + _events(mixed_capture)
    whole = _canonical(run_detectors(events, Context(), (detector,)))
    # dot_cert's findings need certificates in the clear that these captures lack: the
    # events below (issuer hint) cover it.
    assert whole[0] or whole[1] or detector.name in ("ecs", "ech", "dot_cert"), "nothing seen"
    for shares in (2, 5):
        assert _canonical(_by_shares(events, shares, (detector,))) == whole


def _two_clients_in_two_shares(shares: int) -> tuple[str, str]:
    first = "10.0.0.2"
    other = next(
        f"10.0.1.{n}" for n in range(1, 255)
        if client_share(f"10.0.1.{n}", shares) != client_share(first, shares)
    )  # fmt: skip
    return first, other


def test_issuer_hint_compares_clients_in_other_shares() -> None:
    a, b = _two_clients_in_two_shares(2)
    events = [
        event
        for client, cport, issuer in ((a, 42000, "CN=Real CA"), (b, 42001, "CN=Corp MITM"))
        for event in dot_session_events(
            version="TLSv1.2",
            client_lengths=[154],
            server_lengths=[494],
            client=client,
            cport=cport,
            certificates=[certificate(issuer=issuer)],
        )
    ]
    whole = run_detectors(events, Context(), (DotCertDetector,))
    assert {f.client for f in whole.findings} == {a, b}
    assert _canonical(_by_shares(events, 2, (DotCertDetector,))) == _canonical(whole)
    # Each share alone sees one issuer: without the shared facts the hint is lost.
    assert _by_shares(events, 2, (DotCertDetector,), share_facts=False).findings == []


def test_injected_reset_is_judged_by_the_server_s_packets_to_other_clients() -> None:
    a, b = _two_clients_in_two_shares(2)
    reset = connection(src=a, dst="9.9.9.9", outcome="refused", handshake_seen=False, rst_ttl=64)
    other = connection(src=b, dst="9.9.9.9", dport=53, server_ttl=57, ts=reset.ts + 1)
    whole = run_detectors([reset, other], Context(), (DotSessionOutcomesDetector,))
    (failed,) = [f for f in whole.findings if f.id == "DA-DOT-001"]
    assert failed.evidence.get("reset_injected") is True
    shared = _by_shares([reset, other], 2, (DotSessionOutcomesDetector,))
    assert _canonical(shared) == _canonical(whole)
    alone = _by_shares([reset, other], 2, (DotSessionOutcomesDetector,), share_facts=False)
    (failed,) = [f for f in alone.findings if f.id == "DA-DOT-001"]
    assert "reset_injected" not in failed.evidence


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_both_halves_of_an_exchange_belong_to_the_client(path: Path) -> None:
    for event in _events(path):
        client = client_of(event)
        if isinstance(event, DnsMessageSeen):
            assert client == (event.src if event.qr == "query" else event.dst)
        elif isinstance(event, TlsServerHelloSeen | TlsCertificateSeen):
            assert client == event.dst
        elif isinstance(event, TlsAlertSeen):
            assert client == (event.dst if event.from_server else event.src)
        elif isinstance(event, TlsClientHelloSeen):
            assert client == event.src


def test_anomalies_do_not_travel() -> None:
    # They are counted where the capture is read; no detector reads them.
    assert AnomalySeen not in SHARED_EVENT_TYPES
    for detector in DETECTORS:
        assert AnomalySeen not in detector.event_types
