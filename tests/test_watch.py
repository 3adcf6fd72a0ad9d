"""``dotaudit watch`` (dotaudit/watch.py) against the real lab: kdig, stubby and
getdns_query talk to the lab's Unbound while watch captures live, on loopback and in the
firewall namespace whose nftables DROP makes a client fall back to plaintext.

Oracles: what the clients were told to do (a plaintext query is a leak, a strict DoT
query to a working resolver is an established session, DoT into a DROP followed by the
same name in plaintext is a fallback), and ``analyze`` on the packets ``--write`` kept,
which must give the findings the live run gave.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.lab.clients import (
    STUBBY_LISTEN,
    getdns_argv,
    getdns_ok,
    kdig,
    netns_prefix,
    run_getdns,
    stubby_argv,
    stubby_config,
)
from tests.lab.lab import Lab
from tests.lab.netns import FirewallLab, TwoHop
from tests.lab.pki import HOSTNAME
from tests.lab.ports import wait_tcp
from tests.test_cli.command import SCHEMA

LOOPBACK_POLICY = str(Path(__file__).parent.parent / "pcaps" / "loopback-policy.toml")
"""The lab is on loopback: judged as the network it stands in for (else DNS to 127/8 is a
local stub, never a leak)."""

pytestmark = pytest.mark.lab


class Watching:
    """A ``dotaudit watch`` process, started and known to be capturing."""

    def __init__(self, args: list[str], netns: str | None = None) -> None:
        argv = [*netns_prefix(netns), sys.executable, "-m", "dotaudit", "watch", *args]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.proc.stderr is not None
        first = self.proc.stderr.readline()  # written once the capture is active
        assert first.startswith("dotaudit: watching"), first + self.proc.stderr.read()

    def end(self, how: signal.Signals | None, timeout: float = 60) -> tuple[int, str]:
        """Send ``how`` (None: wait for --duration); the exit status and the rest of stderr."""
        if how is not None:
            self.proc.send_signal(how)
        _, stderr = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, stderr


def findings(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text())["findings"])


def analyze(capture: Path, tmp_path: Path, *, policy: bool = True) -> list[dict[str, Any]]:
    out = tmp_path / "analyzed.json"
    done = subprocess.run(
        [sys.executable, "-m", "dotaudit", "analyze", str(capture), "-q", "--fail-on", "none",
         *(("--policy", LOOPBACK_POLICY) if policy else ()), "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return findings(out)


def test_leaks_and_dot_sessions_are_seen_live_and_the_kept_capture_says_the_same(
    lab: Lab, tmp_path: Path
) -> None:
    resolver = lab["padded"]
    stream, report, kept = tmp_path / "live.jsonl", tmp_path / "live.json", tmp_path / "kept.pcap"
    watch = Watching(
        ["lo", "--report-every", "1", "--stream", str(stream), "-o", str(report),
         "--write", str(kept), "--fail-on", "high", "--policy", LOOPBACK_POLICY]
    )  # fmt: skip
    leaked = kdig(resolver.address, "mail.lab.test", port=53, tls=False, padding=False)
    assert leaked.ok, leaked.stdout + leaked.stderr
    strict = kdig(resolver.address, "www.lab.test", ca=lab.ca, hostname=HOSTNAME)
    assert strict.ok, strict.stdout + strict.stderr
    conf = stubby_config(tmp_path / "stubby.yml", resolver.address, lab.ca, HOSTNAME)
    stubby = lab.pm.start("stubby-watch", stubby_argv(conf))
    try:
        wait_tcp(STUBBY_LISTEN, 53, 5, alive=stubby.running)
        assert kdig(STUBBY_LISTEN, "mail.lab.test", port=53, tls=False).ok
    finally:
        lab.pm.stop(stubby)
    got = run_getdns(getdns_argv(resolver.address, "www.lab.test", auth_name=HOSTNAME), lab.ca)
    assert getdns_ok(got), got.stdout + got.stderr
    time.sleep(2.5)  # at least one interval: the leak is announced while the run goes on
    assert report.exists(), "-o is written at every interval"
    announced_early = [json.loads(line)["id"] for line in stream.read_text().splitlines()]
    status, stderr = watch.end(signal.SIGINT)

    assert "Traceback" not in stderr
    assert status == 1, stderr  # a plaintext leak is high: --fail-on high
    assert "ended by stopped" in stderr and "kernel drops 0 of" in stderr
    live = findings(report)
    streamed = [json.loads(line) for line in stream.read_text().splitlines()]
    assert any(i.startswith("DA-LEAK") for i in announced_early)
    # Every finding of the report was streamed, once.
    keys = [(f["id"], f["dedup_key"]) for f in streamed]
    assert len(keys) == len(set(keys))
    assert set(keys) == {(f["id"], f["dedup_key"]) for f in live}
    leaks = [f for f in live if f["id"].startswith("DA-LEAK")]
    assert any(f["server"] == resolver.address for f in leaks)
    sessions = json.loads(report.read_text())["dot_sessions"]
    ours = [s for s in sessions if s["server"] == resolver.address]
    assert len(ours) >= 3  # kdig, stubby and getdns_query each opened one
    assert all(s["outcome"] == "established" for s in ours), ours
    assert {s.get("sni") for s in ours} == {HOSTNAME}
    jsonschema.validate(json.loads(report.read_text()), SCHEMA)
    inputs = json.loads(report.read_text())["inputs"]
    assert inputs[0]["live"]["kernel_dropped"] == 0
    assert inputs[0]["live"]["written"][0]["packets"] == inputs[0]["packets"] > 0
    assert analyze(kept, tmp_path) == live


def test_a_fallback_behind_an_nftables_drop_is_seen_live(
    lab_firewall: FirewallLab, lab: Lab, tmp_path: Path
) -> None:
    ns = lab_firewall.ns.name
    dropped = lab_firewall.addresses["drop"]
    client = "127.0.0.41"
    stream, report = tmp_path / "live.jsonl", tmp_path / "live.json"
    kept = tmp_path / "kept.pcapng"
    watch = Watching(
        ["lo", "--duration", "6", "--stream", str(stream), "-o", str(report),
         "--write", str(kept), "--fail-on", "none", "--policy", LOOPBACK_POLICY],
        netns=ns,
    )  # fmt: skip
    started = time.monotonic()
    dot = kdig(dropped, "intranet.lab.test", netns=ns, ca=lab.ca, hostname=HOSTNAME,
               source=client, timeout=2)  # fmt: skip
    assert not dot.ok  # the DROP rule ate the SYNs
    plain = kdig(dropped, "intranet.lab.test", netns=ns, port=53, tls=False, padding=False,
                 source=client)  # fmt: skip
    assert plain.ok, plain.stdout + plain.stderr
    assert time.monotonic() - started < 6, "the clients finished inside the run"
    status, stderr = watch.end(None)

    assert status == 0 and "ended by duration" in stderr, stderr
    live = findings(report)
    fallbacks = [f for f in live if f["id"] == "DA-FALLBACK-001"]
    assert [(f["client"], f["server"]) for f in fallbacks] == [(client, dropped)]
    streamed = {json.loads(line)["id"] for line in stream.read_text().splitlines()}
    assert "DA-FALLBACK-001" in streamed
    assert analyze(kept, tmp_path) == live


def test_across_a_veth_pair_a_router_reset_and_the_fallback_are_seen_live(
    lab_twohop: TwoHop, lab: Lab, tmp_path: Path
) -> None:
    """watch on the client namespace's end of a veth pair: the router resets DoT (RST
    with its own TTL, one hop nearer than the server's packets), the client falls back to
    plaintext to the same server (real addresses: no loopback policy needed)."""
    hop = lab_twohop
    stream, report, kept = tmp_path / "live.jsonl", tmp_path / "live.json", tmp_path / "kept.pcap"
    watch = Watching(
        [hop.client_if, "--duration", "5", "--stream", str(stream), "-o", str(report),
         "--write", str(kept), "--fail-on", "none"],
        netns=hop.client.name,
    )  # fmt: skip
    tls = kdig(hop.server_addr, "www.lab.test", ca=lab.ca, hostname=HOSTNAME,
               netns=hop.client.name)  # fmt: skip
    plain = kdig(hop.server_addr, "www.lab.test", port=53, tls=False, padding=False,
                 netns=hop.client.name)  # fmt: skip
    assert not tls.ok and plain.ok
    status, stderr = watch.end(None)

    assert status == 0 and "ended by duration" in stderr, stderr
    live = findings(report)
    ids = {f["id"] for f in live}
    assert "DA-FALLBACK-001" in ids
    assert any(f["id"].startswith("DA-LEAK") and f["server"] == hop.server_addr for f in live), ids
    sessions = json.loads(report.read_text())["dot_sessions"]
    reset = [s for s in sessions if s["server"] == hop.server_addr]
    assert reset and all(s["rst_ttl"] == 64 for s in reset), reset
    streamed = {json.loads(line)["id"] for line in stream.read_text().splitlines()}
    assert streamed == ids
    assert analyze(kept, tmp_path, policy=False) == live
