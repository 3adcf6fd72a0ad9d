"""``dotaudit analyze``: findings with frame-level evidence from captures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dotaudit.cli import UsageError
from dotaudit.cli.events import quiet_gc
from dotaudit.cli.output import (
    ProgressBar,
    add_grouping_options,
    add_report_options,
    exit_status,
    grouping,
    print_input_notes,
    progress_bar,
    report_options,
    timestamp,
    write_report,
)
from dotaudit.errors import InputError

DESCRIPTION = (
    "Analyze captures: plaintext DNS leaks, DoT sessions, fallbacks, SNI, DoH/DoQ and padding "
    "compliance."
)
EXAMPLES = """
  dotaudit analyze pcaps/09-office.pcap -o reports/office.html
  dotaudit analyze pcaps/04-fallback.pcap --policy pcaps/loopback-policy.toml --format text
  dotaudit analyze pcaps/ --evidence reports/evidence -o reports/audit.json --fail-on medium
  dotaudit analyze - -o reports/piped.json
"""


def add_arguments(analyze: argparse.ArgumentParser) -> None:
    analyze.add_argument(
        "inputs", nargs="+", metavar="FILE|DIR|-", help="captures; - reads standard input"
    )
    add_report_options(analyze)
    analyze.add_argument("--policy", metavar="FILE", help="audit policy (TOML)")
    analyze.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="files or capture sets analyzed in parallel (default: cores)",
    )
    add_grouping_options(analyze)
    analyze.add_argument(
        "--evidence", metavar="DIR", help="write a small pcap of each finding's frames here"
    )


def run(args: argparse.Namespace) -> int:
    import os

    from dotaudit.detect.base import Context
    from dotaudit.model.policy import Policy, load_policy
    from dotaudit.pipeline import analyze, expand_inputs

    quiet_gc()
    options = report_options(args)
    if args.evidence and "-" in args.inputs:
        raise UsageError(
            "--evidence copies frames from the captures again, and standard input can be "
            "read only once: save the capture to a file and analyze that"
        )
    policy = load_policy(args.policy) if args.policy else Policy()
    paths = expand_inputs(args.inputs)
    if not paths:
        raise InputError("no capture files found in " + ", ".join(args.inputs))
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise UsageError("--workers must be at least 1")

    def progress_for(label: str) -> ProgressBar | None:
        return progress_bar(label)

    report = analyze(
        paths,
        Context(policy=policy),
        workers=workers,
        progress_for=progress_for,
        generated_at=timestamp(),
        grouping=grouping(args),
    )
    if sys.stderr.isatty():
        sys.stderr.write("\r" + " " * 80 + "\r")
    print_input_notes(report.inputs)
    if args.evidence:
        from dotaudit.capture.evidence import write_evidence
        from dotaudit.model.evidence import plan_evidence

        written = write_evidence(plan_evidence(report.sorted_findings()), Path(args.evidence))
        print(f"wrote {written} evidence captures to {args.evidence}", file=sys.stderr)
    write_report(report, options)
    return exit_status(report, options.fail_on)
