"""SNI inventory. Oracles: the packaged resolver list and the corpus manifest's
tshark section (b) (ClientHello SNI values)."""

from __future__ import annotations

import pytest

from dotaudit.detect import sni as sni_module
from dotaudit.detect.base import Context
from dotaudit.detect.sni import SniDetector
from dotaudit.model.events import Event
from dotaudit.model.findings import Severity
from dotaudit.model.policy import Policy
from tests.conftest import corpus_path
from tests.factories import client_hello, dns_query, fed_detector, quic_initial, run_detectors


def _run(events: list[Event], context: Context | None = None) -> SniDetector:
    return fed_detector(SniDetector, events, context)


def test_inventory_counts_and_flags_resolvers() -> None:
    detector = _run(
        [
            client_hello(sni="dns.google", ts=10.0, dst="8.8.8.8"),
            client_hello(sni="dns.google", ts=12.0, dst="8.8.4.4"),
            quic_initial(sni="dns.google", ts=15.0, dst="8.8.8.8", dport=443, alpn=("h3",)),
            client_hello(sni="www.example.org", ts=11.0, dport=443),
            client_hello(sni=None),
            dns_query(),
        ]
    )
    rows = {(r["client"], r["sni"]): r for r in detector.sections()["sni_inventory"]}
    assert set(rows) == {("10.0.0.2", "dns.google"), ("10.0.0.2", "www.example.org")}
    google = rows[("10.0.0.2", "dns.google")]
    assert google["count"] == 3
    assert google["first_ts"] == 10.0 and google["last_ts"] == 15.0
    assert google["transports"] == ["quic", "tls"]
    assert google["servers"] == ["8.8.4.4", "8.8.8.8"]
    assert google["known_resolver"] and google["provider"] == "Google Public DNS"
    assert google["roles"] == ["dot", "doh"]
    assert rows[("10.0.0.2", "www.example.org")]["known_resolver"] is False

    (finding,) = detector.finish()
    assert finding.id == "DA-SNI-001" and finding.client == "10.0.0.2"
    assert [n["sni"] for n in finding.evidence["names"]] == ["dns.google"]
    assert finding.evidence["hellos"] == 3
    assert finding.first_ts == 10.0 and finding.last_ts == 15.0
    assert len(finding.frames) == 3
    assert finding.severity == Severity.INFO


def test_no_finding_without_resolver_names() -> None:
    detector = _run([client_hello(sni="www.example.org", dport=443)])
    assert detector.finish() == []
    assert len(detector.sections()["sni_inventory"]) == 1


def test_wildcard_provider_suffix() -> None:
    detector = _run([client_hello(sni="abc123.dns.nextdns.io")])
    (row,) = detector.sections()["sni_inventory"]
    assert row["provider"] == "NextDNS"


def test_caps_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sni_module, "MAX_SNIS_PER_CLIENT", 2)
    monkeypatch.setattr(sni_module, "MAX_CLIENTS", 1)
    detector = _run(
        [
            client_hello(sni="a.example"),
            client_hello(sni="b.example"),
            client_hello(sni="c.example"),
            client_hello(sni="a.example"),
            client_hello(src="10.0.0.99", sni="a.example"),
        ]
    )
    rows = detector.sections()["sni_inventory"]
    listed = [r for r in rows if r["client"] == "10.0.0.2"]
    assert {r["sni"] for r in listed} == {"a.example", "b.example"}
    assert all(r["client_hellos_dropped"] == 1 for r in listed)
    marker = [r for r in rows if r["client"] is None]
    assert len(marker) == 1 and marker[0]["count"] == 1


def test_severity_override() -> None:
    policy = Policy(severity_overrides={"DA-SNI-001": Severity.LOW})
    events = [client_hello(sni="dns.quad9.net")]
    (finding,) = run_detectors(events, policy, only=SniDetector).findings
    assert finding.severity == Severity.LOW


def test_corpus_doh_cloudflare_sni() -> None:
    from dotaudit.pipeline import CaptureRun

    # tshark (b): 1 ClientHello, SNI mozilla.cloudflare-dns.com.
    path = corpus_path("ndpi/doh-cloudflare-sni/dns_doh.pcap")
    detector = _run(list(CaptureRun(path).events()))
    (row,) = detector.sections()["sni_inventory"]
    assert row["sni"] == "mozilla.cloudflare-dns.com" and row["count"] == 1
    assert row["roles"] == ["doh"] and row["client"] == "172.20.10.4"
    assert [f.id for f in detector.finish()] == ["DA-SNI-001"]


ROUTED_CAPTURES = (
    "ndpi/doh-cloudflare-sni/dns_doh.pcap",
    "ndpi/dot-android10-private-dns/googledns_android10.pcap",
    "ndpi/doq-adguard-784/doq_adguard.pcapng",
    "zeek/tls13-ech/tls13-ech.pcap",
)


@pytest.mark.parametrize("relative", ROUTED_CAPTURES)
def test_event_types_cover_what_detectors_use(relative: str) -> None:
    # A registry may route only ``event_types`` to a detector; the findings and sections
    # must be the same as when it sees every event.
    from dotaudit.detect.doh_doq import DohDoqDetector
    from dotaudit.detect.dot_cert import DotCertDetector
    from dotaudit.detect.ech import EchDetector
    from dotaudit.detect.ecs import EcsDetector
    from dotaudit.detect.local_names import LocalNamesDetector
    from dotaudit.detect.padding import PaddingDetector
    from dotaudit.pipeline import CaptureRun

    events = list(CaptureRun(corpus_path(relative)).events())
    for cls in (
        PaddingDetector,
        DohDoqDetector,
        SniDetector,
        EchDetector,
        DotCertDetector,
        LocalNamesDetector,
        EcsDetector,
    ):
        every, routed = cls(Context()), cls(Context())
        for event in events:
            every.on_event(event)
            if type(event) in cls.event_types:
                routed.on_event(event)
        assert every.finish() == routed.finish(), cls.name
        assert every.sections() == routed.sections(), cls.name


def test_names_over_all_clients_are_capped_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sni_module.MAX_SNIS == 10_000
    monkeypatch.setattr(sni_module, "MAX_SNIS", 2)
    at_cap = _run([client_hello(sni="a.example"), client_hello(src="10.0.0.9", sni="a.example")])
    assert at_cap.caps() == {}
    assert all(r["client"] for r in at_cap.sections()["sni_inventory"])
    over = _run(
        [
            client_hello(sni="a.example"),
            client_hello(src="10.0.0.9", sni="b.example"),
            client_hello(src="10.0.0.9", sni="c.example"),
            client_hello(sni="a.example"),  # a name already kept still counts
        ]
    )
    assert over.caps() == {"sni_names_full": 1}
    rows = over.sections()["sni_inventory"]
    assert [(r["client"], r["sni"], r["count"]) for r in rows if r["client"]] == [
        ("10.0.0.2", "a.example", 2),
        ("10.0.0.9", "b.example", 1),
    ]
    (marker,) = [r for r in rows if r["client"] is None]
    assert marker["count"] == 1 and "cap of 2 names" in marker["note"]
