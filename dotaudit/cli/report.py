"""``dotaudit report``: saved JSON reports re-rendered, several merged into one."""

from __future__ import annotations

import argparse
from pathlib import Path

from dotaudit.cli import UsageError
from dotaudit.cli.output import (
    add_report_options,
    add_strict_option,
    exit_status,
    refuse_overwriting_inputs,
    report_incomplete_inputs,
    report_options,
    timestamp,
    write_report,
)
from dotaudit.files import distinct_files
from dotaudit.model.report import SKIPPED, AuditReport, InputSummary, load_report, merge_reports

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
    add_strict_option(report)
    report.add_argument(
        "--evidence",
        metavar="DIR",
        help="link findings to the evidence pcaps that 'analyze --evidence DIR' wrote",
    )


def run(args: argparse.Namespace) -> int:
    options = report_options(args)
    given = [Path(path) for path in args.inputs]
    refuse_overwriting_inputs(options.output, given)
    paths, duplicates = distinct_files(given)
    skipped = [InputSummary(path=str(d.path), skipped=d.reason) for d in duplicates]
    if options.evidence_dir and len(paths) > 1:
        raise UsageError("--evidence links need a single input report (finding numbers change)")
    loaded: list[AuditReport] = []
    seen: dict[str, str] = {}  # sha256 of an analysed capture -> the report that has it
    for path in paths:
        report = load_report(str(path))
        again = _captures_already_merged(report, seen)
        if again is not None:
            skipped.append(
                InputSummary(path=str(path), skipped=f"its captures are all in {again} already")
            )
            continue
        for digest in _capture_digests(report):
            seen.setdefault(digest, str(path))
        loaded.append(report)
    merged = merge_reports(loaded, timestamp())
    merged.inputs.extend(item.to_dict() for item in skipped)
    write_report(merged, options)
    report_incomplete_inputs(merged, strict=args.strict)
    return exit_status(merged, options.fail_on, strict=args.strict)


def _capture_digests(report: AuditReport) -> list[str]:
    """The sha256 of every capture a report analysed (skipped inputs are not)."""
    return [
        str(item["sha256"])
        for item in report.inputs
        if isinstance(item, dict) and item.get("sha256") and item.get("status") != SKIPPED
    ]


def _captures_already_merged(report: AuditReport, seen: dict[str, str]) -> str | None:
    """The earlier report that analysed every capture this one did (merging both would
    count their findings twice), or None."""
    digests = _capture_digests(report)
    if report.kind != "analyze" or not digests or any(d not in seen for d in digests):
        return None
    return seen[digests[0]]
