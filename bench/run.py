"""dotaudit vs tshark on the same capture, in the same run: packets/s ratio, peak RSS,
memory flatness across capture sizes, the share of packets that reach Python, and whether
both report the same DNS names and SNIs. Two mixes: the benchmark mix and a bulk-dominated
one (95% HTTPS, QUIC and video bulk).

    .venv/bin/python bench/run.py                     # 100k and 1M packets of each mix
    .venv/bin/python bench/run.py --packets 200000    # 20k and 200k
    .venv/bin/python bench/run.py --mix bulk          # one mix only
    .venv/bin/python bench/run.py --capture some.pcap # one existing capture
    .venv/bin/python bench/run.py --layers            # + instructions per layer (cachegrind)

The headline is the RATIO of packets/s (dotaudit / tshark), never absolute times: the
machine may be shared. Results also go to bench/out/result.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from facts import FactDiff, compare, dotaudit_facts, tshark_facts, tshark_sni_origins

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d")
TARGET_RATIO = 5.0
TARGET_BULK_RATIO = 20.0
MIX_PREFIX = {"default": "bench", "bulk": "bulk"}
TARGET_RSS_MB = 150.0
FLAT_GROWTH = 1.25  # peak RSS may grow by at most this factor from the small to the big run
TSHARK_FILTER = "dns || tls.handshake.type==1"
FACT_TYPES = "dns,tls_client_hello,quic_initial"
GENERATOR_SOURCES = (
    "gen_capture.py", "sessions.py", "wire.py", "tlsmsg.py", "quicinit.py", "dnsmsg.py",
)  # fmt: skip


@dataclasses.dataclass
class Run:
    name: str
    cmd: list[str]
    wall: float = 0.0
    cpu: float = 0.0
    rss_mb: float = 0.0
    exit_code: int = 0
    note: str = ""
    processes: int = 1

    def pps(self, packets: int) -> float:
        return packets / self.wall if self.wall > 0 else 0.0


def measure(name: str, cmd: list[str], stdout: Path | None, stderr: Path) -> Run:
    """Run ``cmd`` once. Wall time, CPU time (the child and every process it waited for)
    and the biggest single process come from ``wait4``; a sampler adds up the RSS of the
    whole process tree, so a tool that runs several processes is charged for all of them."""
    with (
        open(stdout or os.devnull, "wb") as out,
        open(stderr, "wb") as err,
    ):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        sampler = TreeRss(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen quiet
    # Linux reports ru_maxrss in KiB.
    return Run(
        name,
        cmd,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        rss_mb=max(usage.ru_maxrss / 1024, sampler.peak_mb),
        exit_code=proc.returncode,
        processes=sampler.most_processes,
    )


class TreeRss(threading.Thread):
    """Samples the summed RSS of a process and its descendants every 20 ms (Linux /proc)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_mb = 0.0
        self.most_processes = 1
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.02):
            pids = _tree(self.pid)
            total_kb = sum(_rss_kb(pid) for pid in pids)
            self.peak_mb = max(self.peak_mb, total_kb / 1024)
            self.most_processes = max(self.most_processes, len(pids))

    def stop(self) -> None:
        self._done.set()
        self.join()


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    todo.extend(int(child) for child in f.read().split())
        except OSError:
            continue  # gone, or not Linux
    return found


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def compile_package() -> None:
    """Byte-compile dotaudit as ``pip install`` would: an editable install under
    PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every module on every start."""
    package = HERE.parent / "dotaudit"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=False)


def best_of(runs: list[Run]) -> Run:
    """Median wall time; the worst peak RSS."""
    chosen = sorted(runs, key=lambda r: r.wall)[len(runs) // 2]
    return dataclasses.replace(
        chosen,
        wall=statistics.median(r.wall for r in runs),
        cpu=statistics.median(r.cpu for r in runs),
        rss_mb=max(r.rss_mb for r in runs),
    )


def scan(path: Path) -> tuple[int, float | None]:
    """(frames, seconds from first to last frame) of a classic pcap (any byte order and
    time resolution) or pcapng file; pcapng spans are not computed (None)."""
    with path.open("rb") as f:
        head = f.read(24)
        magic = head[:4]
        if magic in PCAP_MAGICS:
            endian = "<" if magic[0] in (0xD4, 0x4D) else ">"
            scale = 1e-6 if magic in PCAP_MAGICS[:1] + PCAP_MAGICS[2:3] else 1e-9
            rec = struct.Struct(endian + "IIII")
            n, first, last = 0, 0.0, 0.0
            while True:
                hdr = f.read(16)
                if len(hdr) < 16:
                    return n, last - first
                sec, frac, caplen, _ = rec.unpack(hdr)
                last = sec + frac * scale
                if n == 0:
                    first = last
                f.seek(caplen, 1)
                n += 1
        if magic == b"\x0a\x0d\x0d\x0a":
            f.seek(0)
            n, endian = 0, "<"
            while True:
                hdr = f.read(8)
                if len(hdr) < 8:
                    return n, None
                if hdr[:4] == b"\x0a\x0d\x0d\x0a":
                    endian = "<" if f.read(4) == b"\x4d\x3c\x2b\x1a" else ">"
                    f.seek(-4, 1)
                btype, blen = struct.unpack(endian + "II", hdr)
                if btype in (3, 6):  # simple and enhanced packet blocks
                    n += 1
                f.seek(blen - 8, 1)
    raise SystemExit(f"{path}: not a pcap or pcapng file")


def generator_digest() -> str:
    h = hashlib.sha256()
    for name in GENERATOR_SOURCES:
        h.update((HERE / name).read_bytes())
    return h.hexdigest()[:16]


def ensure_capture(out: Path, packets: int, seed: int, mix: str = "default") -> Path:
    """``out``/bench-N.pcap (bulk-N.pcap for the bulk mix), regenerated when the
    generator's sources changed."""
    path = out / f"{MIX_PREFIX[mix]}-{packets}.pcap"
    meta = path.with_suffix(".json")
    want: dict[str, Any] = {"packets": packets, "seed": seed, "generator": generator_digest()}
    if mix != "default":
        want["mix"] = mix
    if path.exists() and meta.exists() and json.loads(meta.read_text()) == want:
        return path
    print(f"generating {path} ({packets:,} packets, {mix} mix) ...", flush=True)
    started = time.perf_counter()
    # In a child: a fork of a process that grew while generating would charge that
    # memory to every tool measured afterwards (ru_maxrss counts the pre-exec image).
    subprocess.run(
        [sys.executable, str(HERE / "gen_capture.py"), "--packets", str(packets),
         "--seed", str(seed), "--mix", mix, "-o", str(path)],
        check=True,
    )  # fmt: skip
    print(f"  generated in {time.perf_counter() - started:.1f} s", flush=True)
    meta.write_text(json.dumps(want))
    return path


def warm(path: Path) -> None:
    """Read the file once so neither tool pays for the first cold read."""
    with path.open("rb") as f:
        while f.read(1 << 22):
            pass


def dotaudit_cmd(args: argparse.Namespace) -> list[str]:
    if args.dotaudit:
        return str(args.dotaudit).split()
    exe = Path(sys.executable).parent / "dotaudit"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dotaudit"]


def has_subcommand(base: list[str], sub: str) -> bool:
    try:
        done = subprocess.run([*base, sub, "--help"], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def bench_capture(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    tag = path.stem
    out = args.out
    base = dotaudit_cmd(args)
    warm(path)
    packets, span = scan(path)
    runs: dict[str, list[Run]] = {
        "events": [], "events_full": [], "events_parallel": [], "tshark": [], "analyze": [],
    }  # fmt: skip
    analyze_ok = has_subcommand(base, "analyze")
    tshark_out = out / f"{tag}.tshark.txt"
    tshark_cmd = [
        args.tshark, "-r", str(path), "-Y", TSHARK_FILTER, "-T", "fields",
        "-e", "dns.qry.name", "-e", "tls.handshake.extensions_server_name",
    ]  # fmt: skip
    for _ in range(args.repeat):  # interleaved, so load changes hit both tools alike
        runs["events"].append(
            measure(
                "dotaudit events",
                [*base, "events", str(path), "-o", os.devnull],
                None,
                out / f"{tag}.events.stderr",
            )
        )
        runs["events_full"].append(
            measure(
                "dotaudit events --no-prefilter",
                [*base, "events", "--no-prefilter", str(path), "-o", os.devnull],
                None,
                out / f"{tag}.events-full.stderr",
            )
        )
        runs["events_parallel"].append(
            measure(
                "dotaudit events --workers auto",
                [*base, "events", "--workers", "auto", str(path), "-o", os.devnull],
                None,
                out / f"{tag}.events-parallel.stderr",
            )
        )
        if args.tshark:
            runs["tshark"].append(
                measure("tshark", tshark_cmd, tshark_out, out / f"{tag}.tshark.stderr")
            )
        if analyze_ok:
            runs["analyze"].append(
                measure(
                    "dotaudit analyze",
                    [*base, "analyze", str(path), "-o", os.devnull, "--format", "json"],
                    None,
                    out / f"{tag}.analyze.stderr",
                )
            )
    result: dict[str, Any] = {
        "capture": str(path),
        "packets": packets,
        "bytes": path.stat().st_size,
        "span_s": span,
    }
    events = best_of(runs["events"])
    result["events"] = _run_json(events, packets, out / f"{tag}.events.stderr")
    full = best_of(runs["events_full"])
    result["events_full"] = _run_json(full, packets, out / f"{tag}.events-full.stderr")
    parallel = best_of(runs["events_parallel"])
    result["events_parallel"] = _run_json(parallel, packets, out / f"{tag}.events-parallel.stderr")
    tshark = best_of(runs["tshark"]) if runs["tshark"] else None
    if tshark:
        result["tshark"] = _run_json(tshark, packets, out / f"{tag}.tshark.stderr")
    if analyze_ok:
        result["analyze"] = _run_json(
            best_of(runs["analyze"]), packets, out / f"{tag}.analyze.stderr"
        )
    else:
        result["analyze"] = {"skipped": "`dotaudit analyze --help` failed"}
    if tshark and tshark.wall > 0 and events.wall > 0 and events.exit_code == 0:
        result["ratio"] = events.pps(packets) / tshark.pps(packets)
        result["cpu_ratio"] = tshark.cpu / events.cpu if events.cpu > 0 else None
        if parallel.wall > 0 and parallel.exit_code == 0:
            result["parallel_ratio"] = parallel.pps(packets) / tshark.pps(packets)
        if full.wall > 0 and full.exit_code == 0:
            result["full_ratio"] = full.pps(packets) / tshark.pps(packets)
        if analyze_ok and result["analyze"].get("exit_code") in (0, 1):
            result["analyze_ratio"] = result["analyze"]["packets_per_s"] / tshark.pps(packets)
    result["admitted"] = admitted_share(path)
    if args.layers and packets <= args.layers_max:
        import layers

        result["layers"] = layers.measure(path)
    if tshark and not args.no_facts and tshark.exit_code == 0:
        facts_out = out / f"{tag}.facts.jsonl"
        fact_run = measure(
            "dotaudit events (facts)",
            [*base, "events", str(path), "--type", FACT_TYPES, "-o", str(facts_out)],
            None,
            out / f"{tag}.facts.stderr",
        )
        if fact_run.exit_code == 0:
            diff = compare(tshark_facts(tshark_out), dotaudit_facts(facts_out))
            if not diff.sni.agree and args.explain:
                origins = tshark_sni_origins(args.tshark, path, diff.sni.only_tshark[:50])
                diff.sni_origins = origins
            result["facts"] = diff.to_json()
        else:
            result["facts"] = {"error": f"dotaudit events --type exited {fact_run.exit_code}"}
    return result


ADMITTED_SCRIPT = """
import json, sys
from dotaudit.capture.decode import Decoder
from dotaudit.capture.engine import open_capture
from dotaudit.capture.flows import FlowTable
from dotaudit.dissect.dispatch import Dispatcher
source = open_capture(sys.argv[1])
dispatcher = Dispatcher(sys.argv[1], lambda event: None)
table = FlowTable(dispatcher, lambda anomaly: None, bypass=True)
decoder = Decoder(lambda anomaly: None, flows=table)
source.attach(table)
for _ in source.scan(decoder.take):
    pass
skipped = getattr(source, "skipped", 0)
print(json.dumps({"engine": source.engine, "frames": source.frames, "skipped": skipped}))
"""


def admitted_share(path: Path) -> dict[str, Any]:
    """Untimed: how many records the libpcap engine hands to Python (the rest of the
    packets are skipped in C), in a pass with the real dissectors (in a child process)."""
    done = subprocess.run(
        [sys.executable, "-c", ADMITTED_SCRIPT, str(path)],
        capture_output=True, text=True, check=False, cwd=HERE.parent,
    )  # fmt: skip
    if done.returncode != 0:
        return {"error": done.stderr[-300:]}
    found = json.loads(done.stdout)
    frames, skipped = found["frames"], found["skipped"]
    return {
        "engine": found["engine"],
        "frames": frames,
        "admitted": frames - skipped,
        "share": (frames - skipped) / frames if frames else 0.0,
    }


def _run_json(run: Run, packets: int, stderr: Path) -> dict[str, Any]:
    out: dict[str, Any] = {
        "cmd": " ".join(run.cmd),
        "exit_code": run.exit_code,
        "wall_s": round(run.wall, 3),
        "cpu_s": round(run.cpu, 3),
        "packets_per_s": round(run.pps(packets)),
        "peak_rss_mb": round(run.rss_mb, 1),
        "processes": run.processes,
    }
    if run.exit_code not in (0, 1):
        out["stderr_tail"] = stderr.read_text(errors="replace")[-600:]
    return out


def report_capture(res: dict[str, Any]) -> None:
    mb = res["bytes"] / 1e6
    span = f", {res['span_s']:,.1f} s of traffic" if res.get("span_s") is not None else ""
    print(f"\n== {res['capture']}: {res['packets']:,} packets, {mb:,.0f} MB{span}")
    print(f"  {'tool':23} {'packets/s':>11} {'cpu s':>8} {'wall s':>8} {'peak RSS':>10}  exit")
    for key in ("events", "events_full", "events_parallel", "tshark", "analyze"):
        r = res.get(key)
        if r is None:
            continue
        if "skipped" in r:
            print(f"  {'dotaudit ' + key:23} skipped: {r['skipped']}")
            continue
        label = {
            "tshark": "tshark",
            "events_parallel": "dotaudit events -w auto",
            "events_full": "dotaudit events --no-pre",
        }.get(key, f"dotaudit {key}")
        print(
            f"  {label:23} {r['packets_per_s']:>11,} {r['cpu_s']:>8.1f} {r['wall_s']:>8.1f}"
            f" {r['peak_rss_mb']:>7.1f} MB  {r['exit_code']}  ({r.get('processes', 1)} proc)"
        )
        if "stderr_tail" in r:
            print("    stderr: " + r["stderr_tail"].strip().replace("\n", "\n    stderr: "))
    if "ratio" in res:
        target = TARGET_BULK_RATIO if Path(res["capture"]).name.startswith("bulk") else TARGET_RATIO
        verdict = "meets" if res["ratio"] >= target else "BELOW"
        cpu = f"{res['cpu_ratio']:.2f}x" if res.get("cpu_ratio") else "n/a"
        parallel = f"{res['parallel_ratio']:.2f}x" if res.get("parallel_ratio") else "n/a"
        full = f"{res['full_ratio']:.2f}x" if res.get("full_ratio") else "n/a"
        print(
            f"  RATIO dotaudit events / tshark packets/s: {res['ratio']:.2f}x "
            f"({verdict} target >= {target:g}x; CPU-time ratio {cpu}; "
            f"--no-prefilter: {full}; with --workers auto: {parallel})"
        )
        if "analyze_ratio" in res:
            print(f"  ratio dotaudit analyze / tshark packets/s: {res['analyze_ratio']:.2f}x")
    else:
        print("  RATIO dotaudit events / tshark packets/s: n/a (a tool failed or was skipped)")
    admitted = res.get("admitted")
    if admitted and "frames" in admitted:
        print(
            f"  admitted: {admitted['admitted']:,} of {admitted['frames']:,} packets reach Python "
            f"({100 * admitted['share']:.1f}%, engine {admitted['engine']}); the rest are "
            "skipped in C"
        )
    if res.get("layers"):
        import layers

        layers.report(res["layers"])
    facts = res.get("facts")
    if facts:
        FactDiff.print_json(facts)


def report_memory(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Peak RSS of the smallest and the biggest capture, per dotaudit subcommand."""
    if len(results) < 2:
        return None
    small, big = results[0], results[-1]
    print(f"\n{Path(big['capture']).name}:", end="")
    spans = ""
    if small.get("span_s") is not None and big.get("span_s") is not None:
        spans = f" (captures span {small['span_s']:,.1f} s and {big['span_s']:,.1f} s)"
    print(f"\nmemory{spans}:")
    summary: dict[str, Any] = {}
    for key in ("events", "analyze"):
        if "peak_rss_mb" not in small.get(key, {}) or "peak_rss_mb" not in big.get(key, {}):
            continue
        s_rss, b_rss = small[key]["peak_rss_mb"], big[key]["peak_rss_mb"]
        growth = b_rss / s_rss if s_rss else 0.0
        ok = b_rss <= TARGET_RSS_MB and growth <= FLAT_GROWTH
        print(
            f"  dotaudit {key} peak RSS {s_rss:.1f} MB at {small['packets']:,} packets, "
            f"{b_rss:.1f} MB at {big['packets']:,} (x{growth:.2f}; target <= {TARGET_RSS_MB:g} "
            f"MB and flat): {'ok' if ok else 'NOT MET'}"
        )
        summary[key] = {"small_mb": s_rss, "big_mb": b_rss, "growth": round(growth, 3), "ok": ok}
    return summary


def environment(args: argparse.Namespace) -> dict[str, Any]:
    env: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "load_avg_at_start": os.getloadavg()[0],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if args.tshark:
        done = subprocess.run(
            [args.tshark, "--version"], capture_output=True, text=True, check=False
        )
        env["tshark"] = done.stdout.splitlines()[0] if done.stdout else "?"
    done = subprocess.run(
        ["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    env["git"] = done.stdout.strip()
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, help="big capture size (the small is a tenth)")
    parser.add_argument("--capture", type=Path, help="benchmark this capture instead")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool (median)")
    parser.add_argument("--dotaudit", help="command to run instead of .venv/bin/dotaudit")
    parser.add_argument("--tshark", default=shutil.which("tshark"), help="tshark binary")
    parser.add_argument("--no-facts", action="store_true", help="skip the fact comparison")
    parser.add_argument(
        "--mix", choices=["default", "bulk", "both"], default="both", help="which mixes"
    )
    parser.add_argument(
        "--layers", action="store_true", help="instructions per layer under cachegrind (slow)"
    )
    parser.add_argument(
        "--layers-max", type=int, default=100_000, help="largest capture --layers measures"
    )
    parser.add_argument(
        "--no-explain", dest="explain", action="store_false",
        help="do not re-run tshark to locate SNIs that only tshark reported",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=OUT, help="captures and tool outputs")
    parser.add_argument("--json", type=Path, help="summary (default: OUT/result.json)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    args.out.mkdir(parents=True, exist_ok=True)
    args.json = args.json or args.out / "result.json"
    if not args.tshark:
        print("tshark not found: timing dotaudit alone, no ratio", file=sys.stderr)
    base = dotaudit_cmd(args)
    if not has_subcommand(base, "events"):
        print(f"`{' '.join(base)} events --help` failed: dotaudit CLI unavailable", file=sys.stderr)
        return 2
    env = environment(args)
    compile_package()
    print(
        f"dotaudit benchmark: {env['cpus']} CPUs, load average {env['load_avg_at_start']:.1f} at "
        "start. Compare RATIOS, not times: both tools run in the same conditions."
    )
    groups: list[list[Path]]
    if args.capture:
        groups = [[args.capture]]
    else:
        big = args.packets or 1_000_000
        sizes = sorted({max(big // 10, 1), big})
        mixes = ["default", "bulk"] if args.mix == "both" else [args.mix]
        groups = [[ensure_capture(args.out, n, args.seed, mix) for n in sizes] for mix in mixes]
    results = []
    memory = {}
    headlines = []
    for captures in groups:
        group = []
        for path in captures:
            res = bench_capture(path, args)
            report_capture(res)
            group.append(res)
        results += group
        memory[str(captures[-1].name)] = report_memory(group)
        headlines.append(group[-1])
    print()
    for headline in headlines:
        if "ratio" not in headline:
            continue
        bulk = Path(headline["capture"]).name.startswith("bulk")
        target = TARGET_BULK_RATIO if bulk else TARGET_RATIO
        analyze = headline.get("analyze_ratio")
        share = headline.get("admitted", {}).get("share")
        print(
            f"HEADLINE {'bulk mix' if bulk else 'benchmark mix'} at {headline['packets']:,} "
            f"packets: dotaudit events {headline['ratio']:.2f}x tshark's packets/s"
            + (f", analyze {analyze:.2f}x" if analyze else "")
            + f" (target >= {target:g}x); "
            + (f"{100 * share:.1f}% of packets reach Python; " if share is not None else "")
            + f"peak RSS {headline['events']['peak_rss_mb']:.0f} MB (analyze "
            f"{headline.get('analyze', {}).get('peak_rss_mb', 0):.0f} MB) vs tshark "
            f"{headline['tshark']['peak_rss_mb']:.0f} MB"
        )
    summary = {"environment": env, "captures": results, "memory": memory}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.json}")
    failed = any(r["events"]["exit_code"] not in (0,) for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
