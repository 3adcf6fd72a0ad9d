"""Generate a realistic, deterministic mixed pcap for the dotaudit benchmark.

    .venv/bin/python bench/gen_capture.py --packets 1000000 -o bench/out/bench-1000000.pcap

Many interleaved sessions (see ``sessions.py``): bulk TLS and QUIC on 443 with real
ClientHellos (QUIC Initials really encrypted), DNS over UDP/TCP 53, DoT on 853, mDNS, some
IPv6 and 802.1Q-tagged frames. ``--mix`` sets the share of packets per kind; the capture
holds exactly ``--packets`` frames (sessions still open at the end are cut off, as in a
real capture).
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import random
import sys
import time
from collections import Counter
from pathlib import Path

from sessions import CONCURRENCY, DEFAULT_MIX, KINDS, MIXES, World, new_session
from wire import PCAP_HEADER, PCAP_RECORD

START_US = 1_714_564_800_000_000  # 2024-05-01T12:00:00Z
MEAN_GAP_US = 150
MID_STREAM_KINDS = ("tls", "quic", "video", "dot")


def parse_mix(text: str) -> dict[str, float]:
    """A mix name (``default``, ``bulk``) or ``tls=55,quic=25`` -> weights; kinds not
    named get weight 0."""
    if text in MIXES:
        return dict(MIXES[text])
    mix: dict[str, float] = {}
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        kind = kind.strip()
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
        mix[kind] = float(weight)
        if mix[kind] < 0:
            raise ValueError(f"negative weight for {kind}")
    if sum(mix.values()) <= 0:
        raise ValueError("mix has no positive weight")
    return mix


def generate(
    path: Path,
    packets: int,
    seed: int = 1,
    mix: dict[str, float] | None = None,
    steady: bool = False,
) -> Counter[str]:
    """Write ``packets`` frames to ``path``; returns the number of frames per kind."""
    rng = random.Random(seed)
    world = World(rng, steady)
    weights = mix or DEFAULT_MIX
    kinds = [k for k in KINDS if weights.get(k, 0) > 0]
    cumulative = list(itertools.accumulate(weights[k] for k in kinds))
    total = cumulative[-1]
    # Sessions already running when the capture starts begin mid-stream, as in real life.
    pools = {
        k: [new_session(k, world, mid_stream=k in MID_STREAM_KINDS) for _ in range(CONCURRENCY[k])]
        for k in kinds
    }
    counts: Counter[str] = Counter()
    pack = PCAP_RECORD.pack
    rand = rng.random
    expo = rng.expovariate
    t_us = START_US
    buf: list[bytes] = []
    with path.open("wb") as out:
        out.write(PCAP_HEADER)
        for _ in range(packets):
            kind = kinds[bisect.bisect_right(cumulative, rand() * total)]
            pool = pools[kind]
            j = int(rand() * len(pool))
            frame = next(pool[j], None)
            while frame is None:
                pool[j] = new_session(kind, world)
                frame = next(pool[j], None)
            counts[kind] += 1
            t_us += 1 + int(expo(1.0 / MEAN_GAP_US))
            n = len(frame)
            buf.append(pack(t_us // 1_000_000, t_us % 1_000_000, n, n))
            buf.append(frame)
            if len(buf) >= 32768:
                out.write(b"".join(buf))
                buf.clear()
        out.write(b"".join(buf))
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--mix",
        type=parse_mix,
        default=None,
        help="packet share per kind, e.g. tls=55,quic=24,dns_udp=9,dns_tcp=2,dot=6,mdns=2,other=2,"
        " or a named mix: " + ", ".join(MIXES),
    )
    parser.add_argument(
        "--steady",
        action="store_true",
        help="a network that shows all it has early (100 names, reverse lookups of its own"
        " hosts only): what dotaudit keeps of it must not grow with the capture's length",
    )
    args = parser.parse_args(argv)
    if args.packets < 1:
        parser.error("--packets must be positive")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    counts = generate(args.output, args.packets, args.seed, args.mix, args.steady)
    took = time.perf_counter() - started
    shares = ", ".join(f"{k}={counts[k]}" for k in KINDS if counts[k])
    print(
        f"wrote {args.packets} packets to {args.output} in {took:.1f} s ({shares})", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
