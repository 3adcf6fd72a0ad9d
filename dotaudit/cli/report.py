"""``dotaudit report``: saved JSON reports re-rendered, several merged into one."""

from __future__ import annotations

import argparse

from dotaudit.cli import UsageError
from dotaudit.cli.output import (
    add_report_options,
    exit_status,
    report_options,
    timestamp,
    write_report,
)
from dotaudit.cli.redaction import add_redaction_options, redaction_options
from dotaudit.model.report import load_report, merge_reports
from dotaudit.redact import RedactionError, merged_redaction

DESCRIPTION = (
    "Load reports written with --format json and write them in any format; several merge "
    "into one report."
)
EXAMPLES = """
  dotaudit report reports/demo.json -o reports/demo.html
  dotaudit report reports/office.json reports/probe.json -o reports/audit.html
  dotaudit report reports/audit.json --evidence reports/evidence -o reports/audit.html
  dotaudit report reports/office.json --redact --redact-key ~/.dotaudit.key -o handover.html
"""


def add_arguments(report: argparse.ArgumentParser) -> None:
    report.add_argument("inputs", nargs="+", metavar="REPORT.json")
    add_report_options(report)
    report.add_argument(
        "--evidence",
        metavar="DIR",
        help="link findings to the evidence pcaps that 'analyze --evidence DIR' wrote",
    )
    add_redaction_options(report)


def run(args: argparse.Namespace) -> int:
    options = report_options(args)
    if options.evidence_dir and len(args.inputs) > 1:
        raise UsageError("--evidence links need a single input report (finding numbers change)")
    if args.redact and options.evidence_dir:
        raise UsageError(
            "--redact with --evidence: those pcaps were written unredacted; run "
            "'dotaudit analyze --redact --evidence DIR' to write redacted ones"
        )
    redaction = redaction_options(args)
    reports = [load_report(path) for path in args.inputs]
    try:
        # Redacted and unredacted reports never mix, nor two keys or levels.
        block = merged_redaction(reports)
    except RedactionError as exc:
        raise UsageError(str(exc)) from None
    merged = merge_reports(reports, timestamp())
    if len(reports) > 1:
        merged.redaction = block
    if redaction is not None:
        merged, _ = redaction.apply(merged)
    write_report(merged, options)
    return exit_status(merged, options.fail_on)
