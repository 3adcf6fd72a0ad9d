"""``dotaudit analyze``: findings with frame-level evidence from captures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dotaudit.cli import UsageError
from dotaudit.cli.events import quiet_gc
from dotaudit.cli.output import (
    ProgressBar,
    add_report_options,
    exit_status,
    progress_bar,
    report_options,
    timestamp,
    write_report,
)
from dotaudit.cli.redaction import add_redaction_options, redaction_options, write_redacted_evidence
from dotaudit.errors import InputError

DESCRIPTION = (
    "Analyze captures: plaintext DNS leaks, DoT sessions, fallbacks, SNI, DoH/DoQ and padding "
    "compliance."
)
EXAMPLES = """
  dotaudit analyze pcaps/09-office.pcap -o reports/office.html
  dotaudit analyze pcaps/04-fallback.pcap --policy pcaps/loopback-policy.toml --format text
  dotaudit analyze pcaps/ --evidence reports/evidence -o reports/audit.json --fail-on medium
  dotaudit analyze pcaps/09-office.pcap --redact --redact-key ~/.dotaudit.key -o handover.html
"""


def add_arguments(analyze: argparse.ArgumentParser) -> None:
    analyze.add_argument("inputs", nargs="+", metavar="FILE|DIR")
    add_report_options(analyze)
    analyze.add_argument("--policy", metavar="FILE", help="audit policy (TOML)")
    analyze.add_argument(
        "--workers", type=int, metavar="N", help="files analyzed in parallel (default: cores)"
    )
    analyze.add_argument(
        "--evidence", metavar="DIR", help="write a small pcap of each finding's frames here"
    )
    add_redaction_options(analyze)


def run(args: argparse.Namespace) -> int:
    import os

    from dotaudit.detect.base import Context
    from dotaudit.model.policy import Policy, load_policy
    from dotaudit.pipeline import analyze, expand_inputs

    quiet_gc()
    options = report_options(args)
    redaction = redaction_options(args)
    policy = load_policy(args.policy) if args.policy else Policy()
    paths = expand_inputs(args.inputs)
    if not paths:
        raise InputError("no capture files found in " + ", ".join(args.inputs))
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise UsageError("--workers must be at least 1")

    def progress_for(path: Path) -> ProgressBar | None:
        return progress_bar(str(path))

    report = analyze(
        paths,
        Context(policy=policy),
        workers=workers,
        progress_for=progress_for,
        generated_at=timestamp(),
    )
    if sys.stderr.isatty():
        sys.stderr.write("\r" + " " * 80 + "\r")
    written: int | None = None
    if redaction is not None:
        redacted, redactor = redaction.apply(report)
        if args.evidence:
            written = write_redacted_evidence(report, redacted, redactor, args.evidence)
        report = redacted
    elif args.evidence:
        from dotaudit.capture.evidence import write_evidence
        from dotaudit.model.evidence import plan_evidence

        written = write_evidence(plan_evidence(report.sorted_findings()), Path(args.evidence))
    for item in report.inputs:
        for warning in item.get("warnings", []):
            print(f"warning: {warning}", file=sys.stderr)
    if written is not None:
        state = "redacted " if redaction is not None else ""
        print(f"wrote {written} {state}evidence captures to {args.evidence}", file=sys.stderr)
    write_report(report, options)
    return exit_status(report, options.fail_on)
