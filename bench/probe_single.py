"""Benchmark: how long ``dotaudit probe`` takes on one healthy resolver with its defaults.

Starts the loopback lab (root, Unbound, dnsdist: see tests/lab/lab.py) under the lab
lock that the test sessions take, then runs ``dotaudit probe`` against the padded Unbound
(EDNS padding, keepalive 120 s) with nothing but the CA and the query name set, and prints
the wall time of each run, the slowest checks and what the keepalive check waited for.
Target: the default probe of one healthy resolver finishes within 8 s.

    sudo .venv/bin/python bench/probe_single.py [--repeat N] [-- EXTRA PROBE OPTIONS]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.lab.fixtures import LAB_LOCK  # noqa: E402
from tests.lab.lab import start_lab  # noqa: E402

TARGET_S = 8.0
VARIANT = "padded"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("extra", nargs="*", help="more probe options (after --)")
    args = parser.parse_args()
    with LAB_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # never alongside a test session's lab
        with start_lab() as lab, tempfile.TemporaryDirectory() as tmp:
            resolver = lab[VARIANT]
            out = Path(tmp) / "report.json"
            argv = [
                sys.executable, "-m", "dotaudit", "probe",
                f"{resolver.hostname}@{resolver.address}", "--ca", str(lab.ca),
                "--qname", "www.lab.test", "-o", str(out), "--fail-on", "none", "-q",
                *args.extra,
            ]  # fmt: skip
            walls = []
            for _ in range(args.repeat):
                start = time.monotonic()
                done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
                walls.append(time.monotonic() - start)
                if done.returncode != 0:
                    print(done.stderr[-2000:], file=sys.stderr)
                    return 1
            target = json.loads(out.read_text())["targets"][0]
    slowest = sorted(target["checks"], key=lambda c: -c["elapsed_s"])[:4]
    keepalive = next((c for c in target["checks"] if c["id"] == "keepalive"), None)
    print(f"dotaudit probe {VARIANT} ({' '.join(args.extra) or 'defaults'}): "
          + ", ".join(f"{w:.2f} s" for w in walls)
          + f" wall (median {statistics.median(walls):.2f} s)")  # fmt: skip
    print("slowest checks: " + ", ".join(f"{c['id']} {c['elapsed_s']:.2f} s" for c in slowest))
    if keepalive is not None:
        print(f"keepalive: {keepalive['status']}: {keepalive['error_reason']}")
    if not args.extra:
        print(f"target <= {TARGET_S:g} s:", "met" if max(walls) <= TARGET_S else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
