"""Which shard owns a flow (:mod:`dotaudit.capture.flow_shard`): the same for both
directions, spread over every shard. The merge order itself is tested end to end in
tests/test_parallel_events.py against the single pass."""

from __future__ import annotations

import pytest

from dotaudit.capture.flow_shard import shard_of


@pytest.mark.parametrize("shards", [2, 3, 4])
def test_shard_of_is_symmetric_and_in_range(shards: int) -> None:
    seen = set()
    client, server = bytes([192, 0, 2, 10]), bytes([198, 51, 100, 53])
    for a in range(0, 65536, 97):
        for b in (53, 443, 853, 5353, a ^ 0x55):
            owner = shard_of(client, a, server, b, shards)
            assert owner == shard_of(server, b, client, a, shards)
            assert 0 <= owner < shards
            seen.add(owner)
    assert seen == set(range(shards))


def test_same_port_flows_spread_by_address() -> None:
    # mDNS: 5353 at both ends, to 224.0.0.251 from many hosts.
    group = bytes([224, 0, 0, 251])
    owners = {shard_of(bytes([10, 0, 0, host]), 5353, group, 5353, 2) for host in range(1, 40)}
    assert owners == {0, 1}
