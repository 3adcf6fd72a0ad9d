"""The one window of recent outbound plaintext queries that correlating detectors share."""

from __future__ import annotations

import pytest

from dotaudit.detect import recent_plaintext
from dotaudit.detect.base import NamePool
from dotaudit.detect.recent_plaintext import OutboundPlaintextQuery, RecentPlaintextQueries
from dotaudit.model.policy import Policy
from tests import factories as f
from tests.allocations import bytes_kept


def test_kept_query_carries_the_message_facts() -> None:
    window = RecentPlaintextQueries(Policy())
    message = f.dns_query(ts=5.0, qname="a.example", transport="tcp", sport=41234)
    query = window.add(message)
    assert isinstance(query, OutboundPlaintextQuery)
    assert (query.file, query.frame, query.ts) == (f.FILE, message.frame, 5.0)
    assert query.qname == "a.example"
    assert (query.src, query.server, query.transport) == (f.CLIENT, f.SERVER, "tcp")
    assert (query.sport, query.dport) == (41234, 53)
    assert window.since(f.FILE, f.CLIENT, 0.0) == (query,)


@pytest.mark.parametrize(
    "message",
    [
        f.dns_response(),
        f.dns_query(dport=5353, service="mdns"),
        f.dns_query(dport=853),
        f.dns_query(service="doh"),
        f.dns_query(dst="127.0.0.53"),  # a local stub: the query stays on the host
    ],
    ids=["response", "mdns", "not-port-53", "doh", "local-stub"],
)
def test_queries_that_do_not_leave_the_host_in_plaintext_are_not_kept(message: object) -> None:
    window = RecentPlaintextQueries(Policy())
    assert window.add(message) is None  # type: ignore[arg-type]
    assert window.since(f.FILE, f.CLIENT, 0.0) == ()


def test_policy_decides_local_stub_and_internal_resolvers() -> None:
    stub = f.dns_query(dst="127.0.0.53")
    assert RecentPlaintextQueries(Policy(treat_loopback_as_network=True)).add(stub) is not None
    internal = Policy(internal_resolvers=frozenset({f.SERVER}))
    assert RecentPlaintextQueries(internal).add(f.dns_query()) is None


def test_since_is_per_client_from_start_inclusive_oldest_first() -> None:
    window = RecentPlaintextQueries(Policy())
    for ts in (1.0, 2.0, 3.0):
        window.add(f.dns_query(ts=ts))
    window.add(f.dns_query(ts=2.5, src="10.0.0.9"))
    window.add(f.dns_query(ts=2.5, file="other.pcap"))
    assert [q.ts for q in window.since(f.FILE, f.CLIENT, 2.0)] == [2.0, 3.0]
    assert [q.ts for q in window.since(f.FILE, f.CLIENT, 3.0 + 1e-9)] == []
    assert [q.ts for q in window.since(f.FILE, "10.0.0.9", 0.0)] == [2.5]
    assert window.since(f.FILE, "10.0.0.99", 0.0) == ()


def test_each_client_keeps_only_its_latest_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recent_plaintext, "PER_CLIENT", 3)
    window = RecentPlaintextQueries(Policy())
    for ts in (1.0, 2.0, 3.0):
        window.add(f.dns_query(ts=ts))
    assert [q.ts for q in window.since(f.FILE, f.CLIENT, 0.0)] == [1.0, 2.0, 3.0]  # at the cap
    window.add(f.dns_query(ts=4.0))
    assert [q.ts for q in window.since(f.FILE, f.CLIENT, 2.0)] == [2.0, 3.0, 4.0]  # over it
    assert window.evicted == 0 and window.lookback_cut == 0  # 2.0 on: nothing was let go
    assert [q.ts for q in window.since(f.FILE, f.CLIENT, 1.0)] == [2.0, 3.0, 4.0]
    assert window.lookback_cut == 1  # a look-back from 1.0 wanted the query let go
    window.since(f.FILE, f.CLIENT, 0.5)
    assert window.lookback_cut == 2  # every look-back that wanted it is counted


def test_per_client_cap_is_the_documented_one() -> None:
    assert recent_plaintext.PER_CLIENT == 512
    assert recent_plaintext.MAX_CLIENTS == 10_000
    assert recent_plaintext.MAX_QUERIES == 100_000


def test_clients_over_the_cap_forget_the_least_recently_seen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recent_plaintext, "MAX_CLIENTS", 2)
    window = RecentPlaintextQueries(Policy())
    assert window.add(f.dns_query(src="10.0.0.1", ts=1.0)) is not None
    assert window.add(f.dns_query(src="10.0.0.2", ts=2.0)) is not None
    assert window.add(f.dns_query(src="10.0.0.1", ts=3.0)) is not None  # .1 seen again
    assert window.evicted == 0  # at the cap
    # A third client: the one seen least recently (.2) is forgotten, not the newcomer.
    assert window.add(f.dns_query(src="10.0.0.3", ts=4.0)) is not None
    assert window.evicted == 1
    assert window.since(f.FILE, "10.0.0.2", 0.0) == ()
    assert [q.ts for q in window.since(f.FILE, "10.0.0.1", 0.0)] == [1.0, 3.0]
    assert [q.ts for q in window.since(f.FILE, "10.0.0.3", 0.0)] == [4.0]
    # A fourth: .1 (its two queries) goes next, and the count adds up over evictions.
    assert window.add(f.dns_query(src="10.0.0.4", ts=5.0)) is not None
    assert window.evicted == 1 + 2
    assert window.since(f.FILE, "10.0.0.1", 0.0) == ()


def test_queries_over_the_total_forget_whole_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recent_plaintext, "MAX_QUERIES", 3)
    window = RecentPlaintextQueries(Policy())
    for ts in (1.0, 2.0):
        window.add(f.dns_query(src="10.0.0.1", ts=ts))
    window.add(f.dns_query(src="10.0.0.2", ts=3.0))
    assert window.evicted == 0  # three queries: at the cap
    window.add(f.dns_query(src="10.0.0.2", ts=4.0))
    assert window.evicted == 2  # .1, seen least recently, and both its queries
    assert window.since(f.FILE, "10.0.0.1", 0.0) == ()
    assert [q.ts for q in window.since(f.FILE, "10.0.0.2", 0.0)] == [3.0, 4.0]


def test_a_forgotten_client_seen_again_owes_nothing_to_its_old_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recent_plaintext, "PER_CLIENT", 2)
    monkeypatch.setattr(recent_plaintext, "MAX_CLIENTS", 1)
    window = RecentPlaintextQueries(Policy())
    for ts in (1.0, 2.0, 3.0):  # the window lets 1.0 go
        window.add(f.dns_query(src="10.0.0.1", ts=ts))
    window.add(f.dns_query(src="10.0.0.2", ts=4.0))  # .1 is forgotten whole
    assert window.evicted == 2
    window.add(f.dns_query(src="10.0.0.1", ts=5.0))  # .1 back: a fresh window
    assert [q.ts for q in window.since(f.FILE, "10.0.0.1", 0.0)] == [5.0]
    assert window.lookback_cut == 0  # what it let go before is no loss of the new window


def test_evicting_a_client_frees_exactly_its_queries_for_later_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recent_plaintext, "MAX_QUERIES", 3)
    window = RecentPlaintextQueries(Policy())
    window.add(f.dns_query(src="10.0.0.1", ts=1.0))
    window.add(f.dns_query(src="10.0.0.2", ts=2.0))
    window.add(f.dns_query(src="10.0.0.2", ts=3.0))
    window.add(f.dns_query(src="10.0.0.3", ts=4.0))  # four held: .1 (one query) goes
    assert window.evicted == 1
    # Three held again (.2's two and .3's one): a fifth query pushes out .2, both of them.
    window.add(f.dns_query(src="10.0.0.4", ts=5.0))
    assert window.evicted == 1 + 2
    assert window.since(f.FILE, "10.0.0.2", 0.0) == ()
    assert [q.ts for q in window.since(f.FILE, "10.0.0.3", 0.0)] == [4.0]
    assert [q.ts for q in window.since(f.FILE, "10.0.0.4", 0.0)] == [5.0]


def test_a_window_that_went_round_many_times_hands_out_its_latest_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recent_plaintext, "PER_CLIENT", 3)
    window = RecentPlaintextQueries(Policy())
    kept = [
        window.add(
            f.dns_query(
                ts=float(i),
                qname=f"n{i}.example" if i % 4 else None,
                dst=f"192.0.2.{i}",
                sport=40000 + i,
                transport="tcp" if i % 2 else "udp",
            )
        )
        for i in range(11)
    ]
    assert window.since(f.FILE, f.CLIENT, 0.0) == tuple(kept[-3:])
    assert window.since(f.FILE, f.CLIENT, 9.0) == tuple(kept[-2:])


def test_a_full_window_costs_a_few_dozen_bytes_a_query() -> None:
    """What makes the window affordable: tens of thousands of queries on a busy network.
    A query object each cost about 200 bytes; kept as columns, with names that repeat
    kept once, a query costs under 64."""
    clients, pool = 8, [f"name{i}.example" for i in range(50)]
    messages = [
        f.dns_query(
            src=f"10.0.0.{c}",
            ts=float(i),
            qname="".join(pool[i % len(pool)]),  # a string of its own, as the dissector's
            dst="".join(("192.0.2.", str(i % 3))),
        )
        for c in range(clients)
        for i in range(recent_plaintext.PER_CLIENT)
    ]
    window = RecentPlaintextQueries(Policy())

    def fill() -> None:
        for message in messages:
            window.add(message)

    held = bytes_kept(fill)
    assert len(window.since(f.FILE, "10.0.0.1", 0.0)) == recent_plaintext.PER_CLIENT
    assert held / len(messages) < 64


def test_frame_numbers_past_64_bits_are_kept_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A capture set's frames carry their file's place above the file's own number."""
    monkeypatch.setattr(recent_plaintext, "PER_CLIENT", 2)
    window = RecentPlaintextQueries(Policy())
    frames = [7, (3 << 64) | 5, (1 << 70) | 9]  # the last two past 64 bits, one overwriting
    kept = [window.add(f.dns_query(ts=float(i), frame=n)) for i, n in enumerate(frames)]
    assert [q.frame for q in window.since(f.FILE, f.CLIENT, 0.0)] == frames[1:]
    assert window.since(f.FILE, f.CLIENT, 0.0) == tuple(kept[1:])


def test_distinct_names_past_the_pool_cost_the_window_no_table_of_their_own() -> None:
    """A network whose clients each ask for names of their own: past its pool, the window
    keeps each name as it came in. Interning them all (``sys.intern``) cost about 105
    bytes a query in this test, the interpreter's table growing with every name; with a
    pool of 1,000 names about 59."""
    messages = [
        f.dns_query(
            src=f"10.1.{c >> 8}.{c & 255}",
            qname="".join(("h", str(i), ".c", str(c), ".example.com")),
            dst="192.0.2.1",
        )
        for c in range(400)
        for i in range(50)
    ]
    window = RecentPlaintextQueries(Policy(), NamePool(1000))

    def fill() -> None:
        for message in messages:
            window.add(message)

    held = bytes_kept(fill)
    assert len(window.since(f.FILE, "10.1.0.1", 0.0)) == 50
    assert held / len(messages) < 70
