"""Record the tunnel captures in tests/data/tunnels (see ``tests.lab.tunnels``).

Needs root, iproute2, tcpdump, Unbound and kdig. Run from the repository root:
``.venv/bin/python -m tests.lab.make_tunnel_pcaps [--out DIR]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.lab.lab import missing_prerequisite
from tests.lab.pki import make_pki
from tests.lab.procs import LabError, ProcessManager
from tests.lab.tunnels import make_captures, record_vxlan, start_vxlan_pair

ROOT = Path(__file__).resolve().parents[2]


def record(out: Path, work: Path) -> dict[str, Path]:
    pm = ProcessManager(log_dir=work / "logs")
    try:
        pki = make_pki(work / "pki", [])
        pair = start_vxlan_pair(pm, pki, work)
        vxlan = record_vxlan(pair, pm, pki.ca_cert, work / "vxlan-recorded.pcap")
        return make_captures(vxlan, out)
    finally:
        pm.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "tunnels")
    args = parser.parse_args(argv)
    reason = missing_prerequisite()
    if reason:
        print(f"make_tunnel_pcaps: {reason}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="dotaudit-tunnels-") as tmp:
        try:
            paths = record(args.out, Path(tmp))
        except LabError as exc:
            print(f"make_tunnel_pcaps: {exc}", file=sys.stderr)
            return 1
    for name, path in paths.items():
        print(f"{name}: {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
