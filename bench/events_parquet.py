"""What ``dotaudit events --format parquet`` costs next to JSONL on one capture.

Runs ``dotaudit events FILE -o OUT.jsonl`` and ``dotaudit events FILE --format parquet -o
DIR`` alternately, ``--repeat`` times each, in the same run, and prints the median wall
time, CPU time (user + system of the process and its children, from ``os.wait4``), peak
RSS and output size of each. A benchmark: it prints numbers, it never fails on them.

    .venv/bin/python bench/events_parquet.py bench/out/bench-100000.pcap --repeat 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOTAUDIT = [sys.executable, "-m", "dotaudit", "events"]


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_once(command: list[str]) -> tuple[float, float, int]:
    """(wall s, CPU s, peak RSS KiB) of one run."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("capture", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", default="1")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="dotaudit-bench-parquet-"))
    try:
        subprocess.run([*DOTAUDIT, "--help"], check=True, capture_output=True)  # warm caches
        outputs = {"jsonl": scratch / "events.jsonl", "parquet": scratch / "lake"}
        runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in outputs}
        sizes: dict[str, int] = {}
        for _ in range(args.repeat):
            for name, out in outputs.items():
                if out.is_dir():
                    shutil.rmtree(out)
                command = [*DOTAUDIT, str(args.capture), "--workers", args.workers, "-o", str(out)]
                if name == "parquet":
                    command += ["--format", "parquet"]
                runs[name].append(run_once(command))
                sizes[name] = size_of(out)
        print(f"{args.capture} ({args.capture.stat().st_size:,} bytes), median of {args.repeat}")
        for name, measured in runs.items():
            wall = statistics.median(m[0] for m in measured)
            cpu = statistics.median(m[1] for m in measured)
            rss = max(m[2] for m in measured) / 1024
            print(
                f"  {name:8} wall {wall:6.2f} s  cpu {cpu:6.2f} s  peak RSS {rss:6.1f} MiB  "
                f"output {sizes[name]:>12,} bytes"
            )
        base = [statistics.median(m[i] for m in runs["jsonl"]) for i in (0, 1)]
        over = [statistics.median(m[i] for m in runs["parquet"]) for i in (0, 1)]
        print(
            f"  parquet / jsonl: wall {over[0] / base[0]:.2f}x, cpu {over[1] / base[1]:.2f}x, "
            f"size {sizes['parquet'] / sizes['jsonl']:.3f}x"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
