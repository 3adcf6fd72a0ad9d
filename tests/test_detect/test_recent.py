"""RecentQueries: which plaintext queries correlating detectors may look back at."""

from __future__ import annotations

import pytest

from dotaudit.detect import recent
from dotaudit.detect.recent import PlainQuery, RecentQueries
from dotaudit.model.policy import Policy
from tests import factories as f


def test_only_outgoing_plain_dns_queries_to_port_53_are_kept() -> None:
    queries = RecentQueries(Policy(internal_resolvers=frozenset({"10.0.0.53"})))
    kept = f.dns_query(ts=5.0, qname="a.example", transport="tcp")
    assert queries.add(kept) == PlainQuery(5.0, kept.frame, "a.example", f.SERVER, "tcp")
    assert queries.add(f.dns_response()) is None
    assert queries.add(f.dns_query(service="doh")) is None
    assert queries.add(f.dns_query(service="mdns", dport=53)) is None
    assert queries.add(f.dns_query(dport=5353)) is None
    assert queries.add(f.dns_query(dst="127.0.0.53")) is None
    assert queries.add(f.dns_query(dst="10.0.0.53")) is None
    assert queries.between(f.FILE, f.CLIENT, 0.0, 10.0) == [
        PlainQuery(5.0, kept.frame, "a.example", f.SERVER, "tcp")
    ]


def test_between_includes_both_ends_and_keys_by_file_and_client() -> None:
    queries = RecentQueries(Policy())
    for ts in (1.0, 2.0, 3.0):
        queries.add(f.dns_query(ts=ts))
    queries.add(f.dns_query(ts=2.0, src="10.0.0.9"))
    queries.add(f.dns_query(ts=2.0, file="other.pcap"))
    assert [q.ts for q in queries.between(f.FILE, f.CLIENT, 1.0, 3.0)] == [1.0, 2.0, 3.0]
    assert [q.ts for q in queries.between(f.FILE, f.CLIENT, 1.5, 2.5)] == [2.0]
    assert queries.between(f.FILE, "10.0.0.77", 0.0, 9.0) == []


def test_each_client_keeps_its_latest_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recent, "PER_CLIENT", 3)
    queries = RecentQueries(Policy())
    for ts in range(5):
        queries.add(f.dns_query(ts=float(ts)))
    assert [q.ts for q in queries.between(f.FILE, f.CLIENT, 0.0, 9.0)] == [2.0, 3.0, 4.0]


def test_new_clients_past_the_cap_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recent, "MAX_CLIENTS", 2)
    queries = RecentQueries(Policy())
    assert queries.add(f.dns_query(src="10.0.0.1")) is not None
    assert queries.add(f.dns_query(src="10.0.0.2")) is not None
    assert queries.add(f.dns_query(src="10.0.0.3")) is None
    assert queries.add(f.dns_query(src="10.0.0.1")) is not None  # known clients go on
