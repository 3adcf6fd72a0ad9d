"""Live capture rate: ``dotaudit watch`` against a bounded generator on loopback.

    sudo .venv/bin/python bench/live_rate.py                  # 50,000 packets/s for 10 s
    sudo .venv/bin/python bench/live_rate.py --pps 100000 --seconds 5 --mix bulk

What it does:

1. generates ``pps * seconds`` packets of the benchmark mix (``gen_capture.py``);
2. makes a network namespace of its own, so that its ``lo`` carries nothing else (other
   test runs on the machine use the host's ``lo``);
3. starts ``dotaudit watch lo`` there with the default filter, and once it is capturing,
   replays the capture at ``pps`` from a paced ``AF_PACKET`` sender in the same namespace
   (batches of one millisecond's packets, each batch sent at its due time); when the
   sender is done and ``watch`` has gone idle (read all the kernel held), ends it with
   SIGINT;
4. reports the packets sent and the rate achieved, how many of them the default filter
   admits (libpcap's own filter run offline over the same frames: the oracle), how many
   ``watch`` captured, libpcap's kernel and interface drop counters, the drop rate, and
   ``watch``'s CPU time (user + system, from ``wait4``) as a share of one core.

On ``lo`` the kernel hands a capture every packet twice (sent, then received; libpcap
keeps the received copy), so the kernel counters count both copies: the drop rate is
``kernel_dropped / received`` of the same counters, and the captured/admitted ratio says
the same from the packets' side.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

_RECORD = struct.Struct("<IIII")


def frames(data: mmap.mmap) -> list[tuple[int, int]]:
    """(start, end) of every frame of a little-endian microsecond pcap."""
    out = []
    pos = 24
    size = len(data)
    while pos + 16 <= size:
        _, _, caplen, _ = _RECORD.unpack_from(data, pos)
        out.append((pos + 16, pos + 16 + caplen))
        pos += 16 + caplen
    return out


def send(path: Path, pps: int) -> dict[str, float]:
    """Replay ``path`` on ``lo`` at ``pps`` (run inside the namespace)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind(("lo", 0))
    with path.open("rb") as handle:
        data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(data)
    spans = frames(data)
    per_tick = max(1, pps // 1000)
    start = time.perf_counter()
    sent = 0
    for tick in range(0, len(spans), per_tick):
        due = start + tick / pps
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        for a, b in spans[tick : tick + per_tick]:
            sock.send(view[a:b])
        sent += len(spans[tick : tick + per_tick])
    seconds = time.perf_counter() - start
    view.release()
    data.close()
    return {"sent": sent, "seconds": seconds, "rate": sent / seconds}


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def settle(pid: int, quiet: float = 1.0) -> None:
    """Wait until ``pid`` used less than 2% of a core over ``quiet`` seconds."""
    hz = os.sysconf("SC_CLK_TCK")
    before = cpu_ticks(pid)
    while True:
        time.sleep(quiet)
        now = cpu_ticks(pid)
        if now - before < 0.02 * hz * quiet:
            return
        before = now


def admitted(path: Path) -> int:
    """How many frames of ``path`` the default live filter admits (libpcap, offline)."""
    from dotaudit.capture import libpcap
    from dotaudit.capture.bpf import prefilter_expression

    pcap = libpcap.load()
    assert pcap is not None, libpcap.unavailable_reason()
    dead = pcap.lib.pcap_open_dead(1, 262144)
    program = libpcap.BpfProgram()
    text = prefilter_expression(1).encode()
    assert pcap.lib.pcap_compile(dead, ctypes.byref(program), text, 1, 0xFFFFFFFF) == 0
    hdr = libpcap.PktHdr()
    count = 0
    with path.open("rb") as handle:
        data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        for a, b in frames(data):
            hdr.caplen = hdr.len = b - a
            frame = data[a:b]
            count += bool(
                pcap.lib.pcap_offline_filter(ctypes.byref(program), ctypes.byref(hdr), frame)
            )
        data.close()
    pcap.lib.pcap_freecode(ctypes.byref(program))
    pcap.lib.pcap_close(dead)
    return count


def run(
    pps: int,
    seconds: float,
    mix: str,
    keep: Path | None,
    every: float,
    buffer_mb: float,
    work: Path,
) -> dict[str, object]:
    packets = int(pps * seconds)
    capture = keep or work / f"live-{mix}-{packets}.pcap"
    if not capture.exists():
        subprocess.run(
            [sys.executable, str(HERE / "gen_capture.py"), "--packets", str(packets),
             "--mix", mix, "-o", str(capture)],
            check=True, capture_output=True,
        )  # fmt: skip
    expected = admitted(capture)
    ns = f"dotaudit-rate-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        report = work / "watch.json"
        watch = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "dotaudit", "watch", "lo",
             "--report-every", str(every), "-o", str(report),
             "--buffer-size", str(buffer_mb), "--fail-on", "none", "-q"],
            stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert watch.stderr is not None
        first = watch.stderr.readline()
        assert first.startswith("dotaudit: watching"), first + watch.stderr.read()
        sender = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, __file__, "--send", str(capture),
             "--pps", str(pps)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        sent = json.loads(sender.stdout)
        # The sender is done: let watch read what the kernel still holds for it (until
        # its CPU time stops growing), then end it as a user would.
        settle(watch.pid)
        watch.send_signal(signal.SIGINT)
        _, status, usage = os.wait4(watch.pid, 0)
        lines = watch.stderr.read()
        watch.returncode = os.waitstatus_to_exitcode(status)
        assert watch.returncode == 0, lines
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    data = json.loads(report.read_text())
    entry = data["inputs"][0]
    live = entry["live"]
    cpu = usage.ru_utime + usage.ru_stime
    received = live["received"]
    result = {
        "mix": mix,
        "pps_asked": pps,
        "report_every": every,
        "buffer_mb": buffer_mb,
        "sent": sent["sent"],
        "send_seconds": round(sent["seconds"], 3),
        "send_rate": round(sent["rate"]),
        "admitted_by_filter": expected,
        "admitted_share": round(expected / sent["sent"], 4),
        "captured": entry["packets"],
        "missed": expected - entry["packets"],
        "kernel_received": received,
        "kernel_dropped": live["kernel_dropped"],
        "interface_dropped": live["interface_dropped"],
        "drop_rate": round(live["kernel_dropped"] / received, 6) if received else 0.0,
        "watch_seconds": live["seconds"],
        "watch_cpu_seconds": round(cpu, 2),
        "watch_cpu_share": round(cpu / live["seconds"], 3),
        "findings": len(data["findings"]),
        "interval_lines": [line for line in lines.splitlines() if line.startswith("watch ")],
    }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pps", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--mix", default="default", help="default or bulk (gen_capture.py)")
    parser.add_argument("--capture", type=Path, help="keep (or reuse) the generated capture here")
    parser.add_argument("--report-every", type=float, default=10.0, help="watch's interval")
    parser.add_argument("--buffer-size", type=float, default=32, help="watch's kernel buffer, MB")
    parser.add_argument("--send", type=Path, help=argparse.SUPPRESS)  # the sender's own mode
    args = parser.parse_args()
    if args.send is not None:
        print(json.dumps(send(args.send, args.pps)))
        return 0
    if os.geteuid() != 0:
        print("live_rate: needs root (a network namespace, live capture)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="dotaudit-live-rate-"))
    try:  # the generated capture and watch's report go with it (a --capture is kept)
        result = run(
            args.pps, args.seconds, args.mix, args.capture, args.report_every,
            args.buffer_size, work,
        )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
