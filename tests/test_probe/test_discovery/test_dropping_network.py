"""The survey on a network that drops everything (tests/lab/hostile_net.py's dropping
router), the prober run inside the client's namespace: every transport is said to be
dropped, the system resolver's silence is reported, and no resolver costs more than the
connection budget even when every attempt waits out its timeout. (How long that takes
is measured by bench/survey.py, not here.)

Oracle: the router's own nftables ruleset, which drops every forwarded and local packet,
so nothing can answer: no reset, no ICMP, no DNS.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dotaudit.probe.discovery.survey import MAX_CONNECTIONS
from tests.lab.hostile_net import ROUTER_LAN, DroppingNet, dropping_known_file
from tests.lab.lab import Lab
from tests.test_probe.test_discovery.test_hostile_network import probe_in

pytestmark = pytest.mark.lab


def test_everything_dropped_is_said_per_transport(
    lab: Lab, lab_dropping: DroppingNet, tmp_path: Path
) -> None:
    lease = tmp_path / "none.lease"
    lease.write_text("")
    report = probe_in(
        lab_dropping.client.name,
        "--discover",
        "--resolv-conf",
        str(lab_dropping.resolv_conf(tmp_path)),
        "--known",
        str(dropping_known_file(tmp_path, 2)),
        "--ca",
        str(lab.ca),
        "--lease",
        str(lease),
    )
    rows = report["survey"]
    assert len(rows) == 2
    for row in rows:
        for transport in ("dot", "doh", "doq"):
            assert (row[transport]["status"], row[transport]["how"]) == ("blocked", "dropped")
        assert (row["plain"]["status"], row["plain"]["how"]) == ("blocked", "no answer")
        assert "no answer over UDP" in row["plain"]["reason"]
        assert row["connections"]["opened"] <= MAX_CONNECTIONS
    clauses = {(c["transport"], c["kind"]): c for c in report["network"][0]["clauses"]}
    for transport, name in (("dot", "DoT"), ("doh", "DoH"), ("doq", "DoQ"), ("plain", "port 53")):
        clause = clauses[(transport, "blocked")]
        assert clause["text"] == f"blocks {name} to public resolvers by dropping it"
        assert len(clause["evidence"]) == 2
    assert not any(kind == "passes" for _, kind in clauses)
    # the system resolver behind the router said nothing: its DDR query timed out
    [system] = report["system_resolvers"]
    assert system["address"] == ROUTER_LAN
    assert system["ddr"]["status"] == "unreachable", system["ddr"]
    assert system["ddr"]["detail"].startswith("timeout after 2.0 s")
