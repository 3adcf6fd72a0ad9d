"""Benchmark: the time and connection budget of ``dotaudit probe --discover``'s survey.

Two lab networks built from namespaces (tests/lab/hostile_net.py), the prober run in the
client's namespace as a user would:

- **dropping**: a router that drops every packet; ``--resolvers`` (default 10) known
  resolvers behind it, each offering DoT, DoH and DoQ. Every test waits for its timeout:
  the worst case. Target: the survey finishes in 30 s or less.
- **hostile**: the router that injects resets on 853, redirects port 53 and filters DoH
  by SNI, with its three public resolvers. Target: the three clauses, each with evidence.

Both: at most 3 connections (TCP connects plus QUIC handshakes) to any one resolver.
Wall time is the whole command (Python start-up, discovery, survey, report); the report's
own ``survey_s`` and ``ddr_s`` split it.

    sudo .venv/bin/python bench/survey.py [--resolvers N] [--timeout S] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.lab.hostile_net import (  # noqa: E402
    dropping_known_file,
    known_file,
    start_dropping,
    start_hostile,
)
from tests.lab.lab import CERT_IPS  # noqa: E402
from tests.lab.pki import make_pki  # noqa: E402
from tests.lab.procs import ProcessManager  # noqa: E402

TARGET_S = 30.0
MAX_CONNECTIONS = 3


def survey(netns: str, base: Path, known: Path, ca: Path, timeout: float) -> dict[str, Any]:
    lease = base / "none.lease"
    lease.write_text("")
    out = base / "report.json"
    argv = [
        "ip",
        "netns",
        "exec",
        netns,
        sys.executable,
        "-m",
        "dotaudit",
        "probe",
        "--discover",
        "--resolv-conf",
        str(base / "resolv.conf"),
        "--known",
        str(known),
        "--ca",
        str(ca),
        "--lease",
        str(lease),
        "--timeout",
        str(timeout),
        "-o",
        str(out),
        "--fail-on",
        "none",
        "-q",
    ]
    start = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"probe failed: {done.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(out.read_text())
    network = report["network"][0]
    opened = [row["connections"]["opened"] for row in report["survey"]]
    return {
        "wall_s": wall,
        "survey_s": network["budget"]["survey_s"],
        "ddr_s": network["budget"]["ddr_s"],
        "resolvers": len(report["survey"]),
        "max_connections": max(opened, default=0),
        "connections": opened,
        "verdict": network["verdict"],
    }


def line(name: str, runs: list[dict[str, Any]], timeout: float) -> str:
    walls = [r["wall_s"] for r in runs]
    surveys = [r["survey_s"] for r in runs]
    last = runs[-1]
    ok = max(walls) <= TARGET_S and last["max_connections"] <= MAX_CONNECTIONS
    return (
        f"{name}: {last['resolvers']} resolvers, timeout {timeout:g} s: wall "
        f"{statistics.median(walls):.1f} s (max {max(walls):.1f}), survey "
        f"{statistics.median(surveys):.1f} s, discovery {last['ddr_s']:.1f} s, connections "
        f"per resolver {last['connections']} (max {last['max_connections']}) "
        f"[{'within' if ok else 'OVER'} {TARGET_S:g} s / {MAX_CONNECTIONS}]\n  {last['verdict']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolvers", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dotaudit-bench-survey-") as tmp:
        base = Path(tmp)
        pm = ProcessManager(log_dir=base / "logs")
        try:
            pki = make_pki(base / "pki", CERT_IPS)
            dropping = start_dropping(pm)
            hostile = start_hostile(pm, pki, base)
            drop_dir, hostile_dir = base / "dropping", base / "hostile"
            drop_dir.mkdir()
            hostile_dir.mkdir()
            dropping.resolv_conf(drop_dir)
            hostile.resolv_conf(hostile_dir)
            drop_known = dropping_known_file(drop_dir, args.resolvers)
            hostile_known = known_file(hostile_dir)
            drops = [
                survey(dropping.client.name, drop_dir, drop_known, pki.ca_cert, args.timeout)
                for _ in range(args.repeat)
            ]
            hostiles = [
                survey(hostile.client.name, hostile_dir, hostile_known, pki.ca_cert, args.timeout)
                for _ in range(args.repeat)
            ]
        finally:
            pm.close()
    print(line("dropping network", drops, args.timeout))
    print(line("hostile network", hostiles, args.timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
