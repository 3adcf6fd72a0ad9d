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
from dotaudit.model.report import load_report, merge_reports

DESCRIPTION = (
    "Load reports written with --format json and write them in any format; several merge "
    "into one report."
)
EXAMPLES = """
  dotaudit report reports/demo.json -o reports/demo.html
  dotaudit report reports/office.json reports/probe.json -o reports/audit.html
  dotaudit report reports/audit.json --evidence reports/evidence -o reports/audit.html
"""


def add_arguments(report: argparse.ArgumentParser) -> None:
    report.add_argument("inputs", nargs="+", metavar="REPORT.json")
    add_report_options(report)
    report.add_argument(
        "--evidence",
        metavar="DIR",
        help="link findings to the evidence pcaps that 'analyze --evidence DIR' wrote",
    )


def run(args: argparse.Namespace) -> int:
    options = report_options(args)
    if options.evidence_dir and len(args.inputs) > 1:
        raise UsageError("--evidence links need a single input report (finding numbers change)")
    merged = merge_reports([load_report(path) for path in args.inputs], timestamp())
    write_report(merged, options)
    return exit_status(merged, options.fail_on)
