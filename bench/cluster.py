"""``analyze --cluster local:2`` against ``analyze --workers 2`` on the same files, in the
same run: the cost of the distributed path on one machine, and the bytes it shuffles.

    .venv/bin/python bench/cluster.py                        # 20 files of 100k packets
    .venv/bin/python bench/cluster.py --files 4 --packets 20000 --repeat 1

Both commands get the same inputs and write JSON to /dev/null. Wall and CPU time (the
command and every process it waited for) come from ``os.wait4``; a LocalCluster's worker
processes are the command's children, so their CPU is counted. The headline is the ratio
cluster / local (target: at most 1.15). The shuffle is measured in-process on one input:
the encoded event batches its map task ships, per packet and per event. The two reports
must agree finding for finding (checked here on every run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out" / "cluster"
BIN = Path(sys.executable).parent
TARGET = 1.15


def generate(files: int, packets: int) -> list[Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(1, files + 1):
        path = OUT / f"mix-{packets}-{seed:02}.pcap"
        if not path.exists():
            partial = path.with_suffix(".part")
            subprocess.run(
                [sys.executable, str(HERE / "gen_capture.py"), "--packets", str(packets),
                 "--seed", str(seed), "-o", str(partial)],
                check=True, capture_output=True,
            )  # fmt: skip
            partial.rename(path)
        paths.append(path)
    return paths


def timed(cmd: list[str]) -> tuple[float, float, int]:
    start = time.monotonic()
    process = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - start
    assert process.stderr is not None
    error = process.stderr.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {code}: {error}")
    return wall, usage.ru_utime + usage.ru_stime, code


def canonical(path: Path) -> dict[str, Any]:
    report = json.loads(path.read_text())
    report.pop("generated_at")
    for key, value in report.items():
        if isinstance(value, list) and key != "inputs":
            report[key] = sorted(json.dumps(item, sort_keys=True) for item in value)
    return report


def shuffle_per_packet(path: Path) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from dotaudit.cluster.tasks import map_capture

    mapped = map_capture(str(path), 4)
    packets = int(mapped.summary["packets"])
    return {
        "packets": packets,
        "events_shipped": mapped.events,
        "bytes": mapped.shuffled_bytes,
        "bytes_per_packet": mapped.shuffled_bytes / packets,
        "bytes_per_event": mapped.shuffled_bytes / max(mapped.events, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs; medians")
    args = parser.parse_args()
    inputs = [str(p) for p in generate(args.files, args.packets)]
    dotaudit = [str(BIN / "dotaudit"), "analyze", "--format", "json", "-q", "--fail-on", "none"]
    local_out, cluster_out = OUT / "local.json", OUT / "cluster.json"
    runs: dict[str, list[tuple[float, float]]] = {"local": [], "cluster": []}
    for _ in range(args.repeat):
        wall, cpu, _ = timed([*dotaudit, "--workers", str(args.workers), *inputs,
                              "-o", str(local_out)])  # fmt: skip
        runs["local"].append((wall, cpu))
        wall, cpu, _ = timed([*dotaudit, "--cluster", f"local:{args.workers}", *inputs,
                              "-o", str(cluster_out)])  # fmt: skip
        runs["cluster"].append((wall, cpu))
    same = canonical(local_out) == canonical(cluster_out)
    medians = {
        name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
        for name, values in runs.items()
    }
    shuffle = shuffle_per_packet(Path(inputs[0]))
    result = {
        "files": args.files,
        "packets_per_file": args.packets,
        "workers": args.workers,
        "repeat": args.repeat,
        "load_average": os.getloadavg(),
        "local_wall_s": medians["local"][0],
        "local_cpu_s": medians["local"][1],
        "cluster_wall_s": medians["cluster"][0],
        "cluster_cpu_s": medians["cluster"][1],
        "wall_ratio": medians["cluster"][0] / medians["local"][0],
        "cpu_ratio": medians["cluster"][1] / medians["local"][1],
        "same_findings": same,
        "shuffle": shuffle,
        "runs": runs,
    }
    (OUT / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.files} files x {args.packets} packets, {args.workers} workers, "
          f"median of {args.repeat} (load {result['load_average'][0]:.1f})")  # fmt: skip
    for name in ("local", "cluster"):
        wall, cpu = medians[name]
        print(f"  {name:8} wall {wall:7.1f} s   cpu {cpu:7.1f} s")
    verdict = "meets" if result["wall_ratio"] <= TARGET else "misses"
    print(f"  cluster/local: wall {result['wall_ratio']:.2f}x, cpu {result['cpu_ratio']:.2f}x "
          f"({verdict} the {TARGET:.2f}x target)")  # fmt: skip
    print(f"  shuffle: {shuffle['bytes_per_packet']:.1f} bytes/packet, "
          f"{shuffle['bytes_per_event']:.1f} bytes/event ({shuffle['events_shipped']} events "
          f"of {shuffle['packets']} packets)")  # fmt: skip
    print(f"  same findings: {same}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
