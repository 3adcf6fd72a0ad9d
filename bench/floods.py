"""Peak RSS of `dotaudit events` and `dotaudit analyze` under floods and on ordinary
captures of growing size. A benchmark, not a timed test: it prints numbers, it never fails.

    .venv/bin/python bench/floods.py                       # the five floods, 100k/1M mix
    .venv/bin/python bench/floods.py --floods syn853:1000000 --mix-sizes 100000,1000000,3000000
    .venv/bin/python bench/floods.py --keep                # keep the generated captures
    .venv/bin/python bench/floods.py --floods "" --mix-sizes "" --steady-sizes 100000,10000000

Inputs are generated on the fly into ``--dir`` (bench/out by default; floods by
``floodgen.py``, the ordinary mix by ``gen_capture.py``), each written frame by frame to
disk by a process of its own, measured, and deleted unless ``--keep`` (an input already
there is reused). Peak RSS is measured as in run.py (the larger of ``wait4``'s maximum and
the summed RSS of the process tree, sampled every 20 ms). Linux carries the parent's peak
over into the ``wait4`` maximum of a child it forks, so this process stays small: it never
holds an input. Results also go to ``DIR/floods.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import floodgen
from run import OUT, compile_package, measure

HERE = Path(__file__).resolve().parent
TARGET_FLOOD_MB = 200.0
TARGET_MIX_MB = 150.0
DEFAULT_FLOODS = (
    "syn853:1000000,syn853:2000000,dns_clients:1000000,dot_half_open:500000,busy_clients:1000000"
)
DEFAULT_MIX = "100000,1000000"
DEFAULT_STEADY = "100000,1000000"


def generate(args: list[str]) -> None:
    subprocess.run([sys.executable, *args], check=True)


def dotaudit_cmd(python: str, sub: str, capture: Path) -> list[str]:
    cmd = [python, "-m", "dotaudit", sub, str(capture), "-o", os.devnull]
    if sub == "analyze":
        cmd += ["--format", "json", "--fail-on", "none", "-q", "--workers", "1"]
    return cmd


def report_facts(python: str, capture: Path, out: Path) -> dict[str, Any]:
    """Findings, anomaly counts and section sizes of one analyze run (untimed)."""
    report = out / "floods-report.json"
    cmd = dotaudit_cmd(python, "analyze", capture)
    cmd[cmd.index("-o") + 1] = str(report)
    subprocess.run(cmd, check=False, capture_output=True)
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        return {}
    finally:
        report.unlink(missing_ok=True)
    return {
        "findings": len(data.get("findings", [])),
        "anomalies": data.get("anomalies", {}),
        "sections": {k: len(v) for k, v in data.get("sections", {}).items()},
    }


def run_one(
    python: str, label: str, capture: Path, packets: int, out: Path, facts: bool
) -> dict[str, Any]:
    row: dict[str, Any] = {"input": label, "packets": packets, "bytes": capture.stat().st_size}
    for sub in ("events", "analyze"):
        result = measure(
            f"dotaudit {sub}",
            dotaudit_cmd(python, sub, capture),
            None,
            out / f"floods-{label}-{sub}.err",
        )
        row[sub] = {
            "rss_mb": round(result.rss_mb, 1),
            "wall_s": round(result.wall, 1),
            "exit": result.exit_code,
        }
        print(
            f"  {label:28} {sub:8} peak RSS {result.rss_mb:7.1f} MB  "
            f"{result.wall:6.1f} s  exit {result.exit_code}",
            flush=True,
        )
    if facts:
        row["report"] = report_facts(python, capture, out)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--floods",
        default=DEFAULT_FLOODS,
        help=f"KIND:COUNT,... (kinds: {', '.join(floodgen.KINDS)}); empty for none",
    )
    parser.add_argument(
        "--mix-sizes",
        default=DEFAULT_MIX,
        help="packets of the ordinary mix, comma-separated; empty for none",
    )
    parser.add_argument(
        "--steady-sizes",
        default=DEFAULT_STEADY,
        help="packets of the mix on a steady network (gen_capture.py --steady: it shows all"
        " it has within seconds, so what grows past that grows with the capture's length"
        " or with what the report lists), comma-separated; empty for none",
    )
    parser.add_argument("--dir", type=Path, default=OUT, help="where inputs are written")
    parser.add_argument("--python", default=sys.executable, help="the interpreter to measure")
    parser.add_argument("--keep", action="store_true", help="keep the generated captures")
    parser.add_argument(
        "--facts",
        action="store_true",
        help="also run analyze once more to list findings and anomaly counts",
    )
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    compile_package()
    rows: list[dict[str, Any]] = []
    floods = [part.split(":") for part in args.floods.split(",") if part]
    sizes = [int(part) for part in args.mix_sizes.split(",") if part]
    for kind, count_text in floods:
        count = int(count_text)
        capture = args.dir / f"flood-{kind}-{count}.pcap"
        if not capture.exists():
            generate([str(HERE / "floodgen.py"), kind, str(count), "-o", str(capture)])
        packets = count * (5 if kind == "dot_half_open" else 1)
        try:
            rows.append(
                run_one(args.python, f"{kind}:{count}", capture, packets, args.dir, args.facts)
            )
        finally:
            if not args.keep:
                capture.unlink(missing_ok=True)
    mixes: list[tuple[str, str, int, list[str]]] = [("mix", "bench", n, []) for n in sizes]
    steady = [int(part) for part in args.steady_sizes.split(",") if part]
    mixes += [("steady", "steady", n, ["--steady"]) for n in steady]
    for name, stem, packets, extra in mixes:
        capture = args.dir / f"{stem}-{packets}.pcap"
        made = not capture.exists()
        if made:
            generate(
                [
                    str(HERE / "gen_capture.py"),
                    "--packets",
                    str(packets),
                    *extra,
                    "-o",
                    str(capture),
                ]
            )
        try:
            rows.append(
                run_one(args.python, f"{name}:{packets}", capture, packets, args.dir, args.facts)
            )
        finally:
            if made and not args.keep:
                capture.unlink(missing_ok=True)
    print()
    print(f"{'input':28} {'events MB':>10} {'analyze MB':>11}  target")
    for row in rows:
        ordinary = row["input"].startswith(("mix:", "steady:"))
        target = TARGET_MIX_MB if ordinary else TARGET_FLOOD_MB
        worst = max(row["events"]["rss_mb"], row["analyze"]["rss_mb"])
        verdict = "ok" if worst <= target else "OVER"
        print(
            f"{row['input']:28} {row['events']['rss_mb']:10.1f} "
            f"{row['analyze']['rss_mb']:11.1f}  <= {target:.0f} MB {verdict}"
        )
    (args.dir / "floods.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
