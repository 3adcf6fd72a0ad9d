"""Every cap that bites is counted in the report (house rule: untrusted input never grows
memory without bound, and "nothing found" must never mean "nothing read").

Each detector keeps at most a fixed number of aggregates (pairs, groups, sessions). At
the cap an aggregate already kept still counts; one more new one is dropped and the
findings say how many were. The caps' values are the code's, read from each module and
held to the values here, so a changed cap is a deliberate change in two places.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from dotaudit.detect import dot_session_outcomes, ech, ecs, leak, local_names, padding
from dotaudit.model.events import Event
from tests import factories as f
from tests.detection import detect

BASE = int(ipaddress.IPv4Address("10.0.0.0"))


def client(i: int) -> str:
    return str(ipaddress.IPv4Address(BASE + i))


@dataclass(frozen=True)
class Cap:
    name: str
    value: int
    expected: int
    finding: str
    counted_as: str
    anomaly: str
    """The name the report's anomalies count the dropped ones under."""
    events: Callable[[int], list[Event]]
    """The events of the i-th distinct aggregate."""
    aggregates: bool = True
    """Whether the same events again join the aggregate already kept (sessions do not)."""


CAPS = [
    Cap("leak pairs", leak.MAX_PAIRS, 10_000, "DA-LEAK-001", "pairs_dropped",
        "plaintext_pairs_full",
        lambda i: [f.dns_query(src=client(i), ts=1.0 + i * 1e-4)]),
    Cap("ECS pairs", ecs.MAX_PAIRS, 10_000, "DA-LEAK-006", "pairs_dropped",
        "ecs_pairs_full",
        lambda i: [f.dns_query(src=client(i), ts=1.0 + i * 1e-4, service="dnsx",
                               edns=f.edns(ecs="192.0.2.0/24"))]),
    Cap("mDNS groups", local_names.MAX_GROUPS, 10_000, "DA-LEAK-005", "groups_dropped",
        "local_names_groups_full",
        lambda i: [f.dns_query(src=client(i), ts=1.0 + i * 1e-4, service="mdns",
                               dst="224.0.0.251", dport=5353, qname="files.corp.example")]),
    Cap("ECH groups", ech.MAX_GROUPS, 10_000, "DA-ECH-001", "groups_dropped",
        "ech_groups_full",
        lambda i: [f.client_hello(src=client(i), ts=1.0 + i * 1e-4, ech=True, dport=443,
                                  sni="www.example.org", alpn=("h2",))]),
    Cap("padding pairs", padding.MAX_PAIRS, 10_000, "DA-PAD-001", "pairs_dropped",
        "padding_pairs_full",
        lambda i: f.dot_session_events(client=client(i), ts=1.0 + i * 1e-2,
                                       client_lengths=[61], server_lengths=[93])),
    Cap("DoT session groups", dot_session_outcomes.MAX_GROUPS, 5_000, "DA-DOT-001",
        "groups_dropped",
        "dot_session_groups_full",
        lambda i: [f.connection(src=client(i), ts=1.0 + i * 1e-2, start=1.0 + i * 1e-2,
                                end=4.0 + i * 1e-2, outcome="syn_unanswered",
                                handshake_seen=False, syn_retransmits=2)]),
]  # fmt: skip


@pytest.mark.parametrize("cap", CAPS, ids=lambda c: c.name)
def test_cap_value_is_the_documented_one(cap: Cap) -> None:
    assert cap.value == cap.expected


@pytest.mark.parametrize("cap", CAPS, ids=lambda c: c.name)
def test_cap_keeps_what_it_holds_and_counts_what_it_drops(cap: Cap) -> None:
    # Exactly the cap's worth of aggregates, more events for one already kept (still
    # counted in it), then one new aggregate past the cap: kept are exactly the cap's
    # worth, dropped exactly one. (A cap one lower would drop two, one higher none.)
    events: list[Event] = []
    for i in range(cap.value):
        events += cap.events(i)
    if cap.aggregates:
        events += cap.events(0)
    events += cap.events(cap.value)
    detected = detect(events, sections=False)
    found = detected.of(cap.finding)
    assert len(found) == cap.value
    assert {x.evidence.get(cap.counted_as) for x in found} == {1}
    assert client(cap.value) not in {x.client for x in found}
    assert client(0) in {x.client for x in found}
    assert detected.caps[cap.anomaly] == 1


def test_nothing_is_counted_as_dropped_below_the_caps() -> None:
    events: list[Event] = []
    for cap in CAPS:
        events += cap.events(0) + cap.events(1)
    detected = detect(events)
    for cap in CAPS:
        found = detected.of(cap.finding)
        assert found, cap.name
        assert all(cap.counted_as not in x.evidence for x in found), cap.name
    assert detected.caps == {}
