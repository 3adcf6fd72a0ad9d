"""Bulk probing without the network: the targets file, and the runner streaming one
result per target on closed loopback addresses (the lab runs are CLI tests)."""

from __future__ import annotations

import io
import json

import pytest

from dotaudit.probe.base import ProbeConfig
from dotaudit.probe.bulk import JsonlStream, aggregate, parse_targets_file, run_bulk
from dotaudit.probe.target import TargetError

PIN = "ghwIGlx+fVRKVpwmWZzNUQuFXmfMbM+rm4n7PDOl44Y="


def test_targets_file() -> None:
    config = ProbeConfig()
    text = (
        "# resolvers\n192.0.2.1\ndns.test@192.0.2.2:8853  # pinned\n"
        f"192.0.2.3 dns.test pin={PIN}\n\n"
    )
    found = parse_targets_file(io.StringIO(text), config)
    assert [t.target.address for t in found] == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert found[1].target.port == 8853 and found[1].target.name == "dns.test"
    assert found[2].target.name == "dns.test" and found[2].config.pins == (PIN,)
    assert found[0].config is config
    for bad in ("192.0.2.1 pin=!!", "not a target at all", "192.0.2.1 dns.test other.test"):
        with pytest.raises(TargetError, match="line 1"):
            parse_targets_file(io.StringIO(bad), config)


def test_bulk_streams_every_result_on_closed_addresses() -> None:
    config = ProbeConfig(timeout=0.5, checks=frozenset({"reach.853"}))
    targets = parse_targets_file(io.StringIO("".join(f"127.54.9.{i}\n" for i in range(1, 31))),
                                 config)  # fmt: skip
    out = io.StringIO()
    stream = JsonlStream(out)
    ticks: list[int] = []
    results = run_bulk(targets, concurrency=8, on_result=stream.write,
                       progress=lambda done, total: ticks.append(done))  # fmt: skip
    assert [r.target.address for r in results] == [t.target.address for t in targets]
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(line["target"] for line in lines) == sorted(t.target.target for t in targets)
    assert ticks == list(range(1, 31))
    summary = aggregate(results)
    assert summary["reach_853"] == {"refused": 30} and summary["strict_accept"] == 0
