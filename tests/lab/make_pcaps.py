"""``make pcaps``: record the sample captures in pcaps/ with their truth files.

Needs root and the lab's Debian packages. Run from the repository root:
``.venv/bin/python -m tests.lab.make_pcaps [--only NAME-PREFIX]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests.lab.lab import start_lab
from tests.lab.netns import start_firewall
from tests.lab.procs import LabError
from tests.lab.scenarios import SCENARIOS, Ctx

ROOT = Path(__file__).resolve().parents[2]
SIZE_BUDGET = 2 * 1024 * 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "pcaps")
    parser.add_argument("--only", default="", help="run only scenarios whose name contains this")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dotaudit-pcaps-") as tmp:
        work = Path(tmp)
        try:
            lab = start_lab(work / "lab")
        except LabError as exc:
            print(f"make pcaps: lab cannot start: {exc}", file=sys.stderr)
            return 1
        with lab:
            ctx = Ctx(lab, start_firewall(lab.pm, lab.pki, lab.base), args.out, work)
            for scenario in SCENARIOS:
                if args.only and args.only not in scenario.__name__:
                    continue
                start = time.monotonic()
                scenario(ctx)
                print(f"{scenario.__name__}: {time.monotonic() - start:.1f}s", flush=True)
    total = sum(p.stat().st_size for p in args.out.iterdir() if p.is_file())
    print(f"pcaps/: {total} bytes")
    if total > SIZE_BUDGET:
        print(f"pcaps/ is over the {SIZE_BUDGET} byte budget", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
