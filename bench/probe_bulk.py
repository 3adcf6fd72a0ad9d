"""Benchmark: ``dotaudit probe --targets`` over 200 lab targets at concurrency 50.

Starts the loopback lab (root, Unbound, dnsdist: see tests/lab/lab.py), writes 200
targets (ten lab resolvers, good and bad, each listed 12 times, plus 80 closed
127.54.x addresses), runs the probe and prints the wall time. Target: under 60 s.

    sudo .venv/bin/python bench/probe_bulk.py [--max-idle-wait S] [--concurrency N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.lab.lab import start_lab  # noqa: E402
from tests.test_probe.test_bulk_lab import write_targets  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--max-idle-wait", type=float, default=None, help="default: the CLI's (no idle wait)"
    )
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args()
    with start_lab() as lab, tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        write_targets(lab, base / "targets.txt")
        argv = [
            sys.executable, "-m", "dotaudit", "probe", "--targets", str(base / "targets.txt"),
            "--ca", str(lab.ca), "--qname", "www.lab.test",
            "--concurrency", str(args.concurrency), "--timeout", str(args.timeout),
            "--stream", str(base / "run.jsonl"),
            "-o", str(base / "report.json"), "--fail-on", "none", "-q",
        ]  # fmt: skip
        if args.max_idle_wait is not None:
            argv += ["--max-idle-wait", str(args.max_idle_wait)]
        start = time.monotonic()
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        wall = time.monotonic() - start
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            return 1
        data = json.loads((base / "report.json").read_text())
        summary = data["bulk"]["aggregate"]
        print(
            f"200 targets, concurrency {args.concurrency}, --max-idle-wait "
            f"{args.max_idle_wait if args.max_idle_wait is not None else 'default'}: "
            f"{wall:.1f} s wall, {len(data['targets'])} results, "
            f"strict accept {summary['strict_accept']}, reach {summary['reach_853']}"
        )
        print("target < 60 s:", "met" if wall < 60 else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
