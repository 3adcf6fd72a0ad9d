"""SNI inventory. Oracles: the packaged resolver list and the corpus manifest's
tshark section (b) (ClientHello SNI values)."""

from __future__ import annotations

import pytest

from dotaudit.detect import sni as sni_module
from dotaudit.detect.base import Context
from dotaudit.detect.sni import SniDetector
from dotaudit.model.events import Event
from dotaudit.model.findings import MAX_FRAMES, Confidence, Severity
from dotaudit.model.policy import Policy
from tests.allocations import bytes_kept
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


def test_a_client_without_resolver_names_does_not_hide_the_clients_after_it() -> None:
    # Clients are judged in the order they were first seen: the one with no resolver
    # name comes first, and the one after it still gets its finding.
    detector = _run(
        [
            client_hello(src="10.0.0.3", sni="www.example.org", ts=1.0, dport=443),
            client_hello(src="10.0.0.2", sni="dns.google", ts=2.0, dst="8.8.8.8"),
        ]
    )
    assert [f.client for f in detector.finish()] == ["10.0.0.2"]


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
    # Each cap that bit is an anomaly of the report under its own name.
    assert detector.caps() == {"sni_clients_full": 1, "sni_client_names_full": 1}


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

    def over_events() -> list[Event]:
        return [
            client_hello(sni="a.example"),
            client_hello(src="10.0.0.9", sni="b.example"),
            client_hello(src="10.0.0.9", sni="c.example"),
            client_hello(sni="a.example"),  # a name already kept still counts
        ]

    over = _run(over_events())
    assert over.caps() == {"sni_names_full": 1}
    more = [client_hello(src="10.0.0.9", sni=f"{n}.example") for n in ("d", "e")]
    assert _run([*over_events(), *more]).caps() == {"sni_names_full": 3}
    rows = over.sections()["sni_inventory"]
    assert [(r["client"], r["sni"], r["count"]) for r in rows if r["client"]] == [
        ("10.0.0.2", "a.example", 2),
        ("10.0.0.9", "b.example", 1),
    ]
    (marker,) = [r for r in rows if r["client"] is None]
    assert marker == {
        "client": None,
        "sni": None,
        "count": 1,
        "note": "1 more hellos with names over the cap of 2 names; their names are not listed",
    }


def test_sni_finding_and_inventory_in_full() -> None:
    google = client_hello(sni="dns.google", ts=20.0, dst="8.8.8.8")
    quad9 = client_hello(sni="dns.quad9.net", ts=10.0, dst="9.9.9.9")
    quad9_again = quic_initial(sni="dns.quad9.net", ts=30.0, dst="9.9.9.10", dport=853)
    other = client_hello(sni="www.example.org", ts=5.0, dport=443, dst="192.0.2.1")
    detector = _run([google, quad9, quad9_again, other])
    (finding,) = detector.finish()
    assert finding.evidence == {
        "names": [
            {
                "sni": "dns.quad9.net",
                "provider": "Quad9",
                "roles": ["dot", "doh"],
                "count": 2,
                "servers": ["9.9.9.10", "9.9.9.9"],
            },
            {
                "sni": "dns.google",
                "provider": "Google Public DNS",
                "roles": ["dot", "doh"],
                "count": 1,
                "servers": ["8.8.8.8"],
            },
        ],
        "hellos": 3,
    }
    assert finding.dedup_key == "DA-SNI-001|10.0.0.2"
    assert finding.confidence is Confidence.HIGH
    assert (finding.client, finding.server, finding.file) == ("10.0.0.2", None, "test.pcap")
    assert (finding.first_ts, finding.last_ts) == (10.0, 30.0)
    assert finding.frames == tuple(sorted((google.frame, quad9.frame, quad9_again.frame)))
    rows = detector.sections()["sni_inventory"]
    assert [r["sni"] for r in rows] == ["www.example.org", "dns.quad9.net", "dns.google"]
    assert rows[0] == {
        "client": "10.0.0.2",
        "sni": "www.example.org",
        "count": 1,
        "first_ts": 5.0,
        "last_ts": 5.0,
        "first_frame": other.frame,
        "transports": ["tls"],
        "servers": ["192.0.2.1"],
        "known_resolver": False,
        "provider": None,
        "roles": [],
        "client_hellos_dropped": 0,
    }
    assert rows[1]["first_frame"] == quad9.frame


def test_sni_doh_only_name_has_only_the_doh_role() -> None:
    detector = _run([client_hello(sni="mozilla.cloudflare-dns.com", dport=443)])
    (row,) = detector.sections()["sni_inventory"]
    assert row["roles"] == ["doh"] and row["provider"] == "Cloudflare 1.1.1.1"


def test_sni_hellos_seen_out_of_order_keep_the_earliest_and_latest() -> None:
    late = client_hello(sni="dns.google", ts=20.0)
    early = client_hello(sni="dns.google", ts=10.0)
    middle = client_hello(sni="dns.google", ts=15.0)
    (row,) = _run([late, early, middle]).sections()["sni_inventory"]
    assert (row["first_ts"], row["last_ts"], row["count"]) == (10.0, 20.0, 3)


def test_sni_server_and_frame_samples_are_capped() -> None:
    hellos = [
        client_hello(sni="dns.google", dst=f"192.0.2.{i}", ts=float(i)) for i in range(MAX_FRAMES)
    ]
    detector = _run(hellos)
    (row,) = detector.sections()["sni_inventory"]
    assert row["servers"] == sorted(f"192.0.2.{i}" for i in range(8))
    (finding,) = detector.finish()
    assert len(finding.frames) == MAX_FRAMES
    more = _run([*hellos, client_hello(sni="dns.google", ts=99.0)]).finish()[0]
    assert more.frames == finding.frames


def test_sni_dropped_clients_marker_row_in_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sni_module, "MAX_CLIENTS", 2)
    detector = _run(
        [
            client_hello(sni="a.example"),
            client_hello(src="10.0.0.3", sni="a.example"),
            client_hello(src="10.0.0.97", sni="a.example"),
            client_hello(src="10.0.0.98", sni="a.example"),
            client_hello(src="10.0.0.98", sni="b.example"),
            client_hello(src="10.0.0.99", sni="a.example"),
        ]
    )
    marker = detector.sections()["sni_inventory"][-1]
    # The dropped clients are themselves tracked only up to the cap: "2 more" is a floor.
    assert marker == {
        "client": None,
        "sni": None,
        "count": 4,
        "note": "2 more clients over the cap of 2; their hellos are not listed",
    }


def test_sni_drops_per_client_are_counted_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sni_module, "MAX_SNIS_PER_CLIENT", 1)
    detector = _run([client_hello(sni=f"n{i}.example") for i in range(4)])
    (row,) = detector.sections()["sni_inventory"]
    assert row["client_hellos_dropped"] == 3


def test_sni_frame_sample_keeps_the_first_hellos() -> None:
    import dataclasses

    hellos = [client_hello(sni="dns.google", frame=1000 + i) for i in range(MAX_FRAMES)]
    late = dataclasses.replace(hellos[0], frame=1)  # e.g. from a later file
    (finding,) = _run([*hellos, late]).finish()
    assert 1 not in finding.frames


def test_names_over_the_per_client_cap_are_counted_in_the_finding() -> None:
    """At the cap of 500 names a client still gets its finding; each hello whose name
    found no room is counted in it (snis_dropped), and nothing is counted below the cap."""
    assert sni_module.MAX_SNIS_PER_CLIENT == 500
    names = [f"n{i}.dns.nextdns.io" for i in range(500)]  # each a NextDNS name
    at_cap = [client_hello(sni=name, ts=10.0 + i / 1000) for i, name in enumerate(names)]
    (finding,) = _run(at_cap).finish()
    assert len(finding.evidence["names"]) == 500
    assert "snis_dropped" not in finding.evidence
    over = [client_hello(sni="n500.dns.nextdns.io"), client_hello(sni="dns.google")]
    (finding,) = _run([*at_cap, *over]).finish()
    assert finding.evidence["snis_dropped"] == 2
    assert "dns.google" not in {n["sni"] for n in finding.evidence["names"]}


def test_hellos_of_clients_over_the_client_cap_are_counted_in_every_finding() -> None:
    assert sni_module.MAX_CLIENTS == 1_000
    clients = [f"10.1.{i // 256}.{i % 256}" for i in range(1_001)]
    hellos = [client_hello(src=c, sni="dns.quad9.net", ts=1.0 + i / 1000)
              for i, c in enumerate(clients)]  # fmt: skip
    kept = _run(hellos[:-1]).finish()
    assert len(kept) == 1_000 and all("clients_dropped" not in x.evidence for x in kept)
    again = client_hello(src=clients[-1], sni="dns.google")
    found = _run([*hellos, again]).finish()
    assert len(found) == 1_000 and clients[-1] not in {x.client for x in found}
    assert {x.evidence.get("clients_dropped") for x in found} == {2}


def test_an_inventory_name_costs_a_few_hundred_bytes() -> None:
    """A busy network's inventory holds tens of thousands of (client, name) rows while the
    capture is read; each cost about 700 bytes as a dataclass with two sets, and costs
    under 400 with slots, short lists and names kept once."""
    names = [f"name{i}.example" for i in range(40)]
    hellos = [
        client_hello(
            src=f"10.0.{c}.1",
            sni="".join(names[i]),  # a string of its own, as the dissector's
            dst="".join(("192.0.2.", str(i % 3))),
            dport=443,
            frame=c * 100 + i,
        )
        for c in range(50)
        for i in range(len(names))
    ]
    detector = SniDetector(Context())

    def feed() -> None:
        for hello in hellos:
            detector.on_event(hello)

    held = bytes_kept(feed)
    assert len(detector.sections()["sni_inventory"]) == len(hellos)
    assert held / len(hellos) < 400


def test_a_name_seen_again_and_again_costs_no_more_unless_a_resolver_has_it() -> None:
    """Only a known resolver's name has a finding to point at its frames; the inventory's
    rows list a name's first frame. A steady network's names recur all day: keeping a
    sample of frames for each of them cost about 500 bytes more a name."""
    pairs = [(f"10.0.{c}.1", f"name{i}.example") for c in range(20) for i in range(10)]
    hellos = [
        client_hello(src=src, sni="".join(sni), dst="192.0.2.1", dport=443, frame=n * 1000 + k)
        for k in range(MAX_FRAMES)
        for n, (src, sni) in enumerate(pairs)
    ]
    once = SniDetector(Context())
    again = SniDetector(Context())

    def feed(detector: SniDetector, events: list[Event]) -> None:
        for event in events:
            detector.on_event(event)

    held_once = bytes_kept(lambda: feed(once, hellos[: len(pairs)]))
    held_again = bytes_kept(lambda: feed(again, hellos))
    assert [r["count"] for r in again.sections()["sni_inventory"]] == [MAX_FRAMES] * len(pairs)
    assert (held_again - held_once) / len(pairs) < 50

    resolver = _run([client_hello(sni="dns.google", frame=f) for f in range(1, 4)])
    assert resolver.finish()[0].frames == (1, 2, 3)
