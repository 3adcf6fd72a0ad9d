"""``python -m tests.fuzz``: the capture fuzzer's command line (see tests/fuzz/__init__.py)."""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from tests.fuzz.campaign import REGRESSIONS, run_campaign
from tests.fuzz.captures import CorpusMissing
from tests.fuzz.execute import MEMORY_LIMIT, TIME_LIMIT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--seed", type=int, help="campaign seed (default: random, printed)")
    parser.add_argument("--time", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument("--runs", type=int, metavar="N", help="stop after N executions")
    parser.add_argument(
        "--mode",
        choices=("mixed", "subprocess", "in-process"),
        default="mixed",
        help="how to run the mutants (default mixed: every Nth in a subprocess)",
    )
    parser.add_argument("--subprocess-every", type=int, default=4, metavar="N")
    parser.add_argument("--memory-mib", type=int, default=MEMORY_LIMIT >> 20)
    parser.add_argument("--time-limit", type=float, default=TIME_LIMIT, metavar="S")
    parser.add_argument(
        "--save", type=Path, default=REGRESSIONS, help=f"crash captures go here ({REGRESSIONS})"
    )
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--no-minimise", action="store_true")
    parser.add_argument("--require-corpus", action="store_true", help="fail without ../shared")
    args = parser.parse_args(argv)
    if args.time is None and args.runs is None:
        parser.error("give --time or --runs")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    print(f"fuzzing with --seed {seed}", flush=True)
    try:
        campaign = run_campaign(
            seed=seed,
            runs=args.runs,
            seconds=args.time,
            mode=args.mode,
            subprocess_every=max(1, args.subprocess_every),
            save_dir=None if args.no_save else args.save,
            minimise=not args.no_minimise,
            memory=args.memory_mib << 20,
            time_limit=args.time_limit,
            require_corpus=args.require_corpus,
            log=lambda text: print(text, flush=True),
        )
    except CorpusMissing as exc:
        print(f"fuzz: {exc}", file=sys.stderr)
        return 2
    print(campaign.summary())
    return 1 if campaign.new_crashes else 0


if __name__ == "__main__":
    sys.exit(main())
