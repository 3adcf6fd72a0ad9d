"""``dotaudit analyze``: findings with frame-level evidence from captures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dotaudit.cli import UsageError
from dotaudit.cli.events import quiet_gc
from dotaudit.cli.output import (
    ProgressBar,
    ReportOptions,
    add_report_options,
    exit_status,
    progress_bar,
    report_options,
    timestamp,
    write_report,
)
from dotaudit.errors import InputError

if TYPE_CHECKING:
    from dotaudit.detect.base import Context

DESCRIPTION = (
    "Analyze captures: plaintext DNS leaks, DoT sessions, fallbacks, SNI, DoH/DoQ and padding "
    "compliance."
)
EXAMPLES = """
  dotaudit analyze pcaps/09-office.pcap -o reports/office.html
  dotaudit analyze pcaps/04-fallback.pcap --policy pcaps/loopback-policy.toml --format text
  dotaudit analyze pcaps/ --evidence reports/evidence -o reports/audit.json --fail-on medium
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
    analyze.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run on a Dask cluster: tcp://HOST:8786 (an existing scheduler) or local:N (N "
        "worker processes here); inputs may then be fsspec URLs (s3://, gs://, https://, "
        "file://), read by the workers (docs/scale.md)",
    )


def run(args: argparse.Namespace) -> int:
    import os

    from dotaudit.detect.base import Context
    from dotaudit.model.policy import Policy, load_policy
    from dotaudit.pipeline import analyze, expand_inputs

    quiet_gc()
    options = report_options(args)
    policy = load_policy(args.policy) if args.policy else Policy()
    if args.cluster:
        return _run_on_cluster(args, options, Context(policy=policy))
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
    for item in report.inputs:
        for warning in item.get("warnings", []):
            print(f"warning: {warning}", file=sys.stderr)
    if args.evidence:
        from dotaudit.capture.evidence import write_evidence
        from dotaudit.model.evidence import plan_evidence

        written = write_evidence(plan_evidence(report.sorted_findings()), Path(args.evidence))
        print(f"wrote {written} evidence captures to {args.evidence}", file=sys.stderr)
    write_report(report, options)
    return exit_status(report, options.fail_on)


def _run_on_cluster(args: argparse.Namespace, options: ReportOptions, context: Context) -> int:
    from dotaudit.cluster.engine import ClusterProgress, analyze_on_cluster
    from dotaudit.errors import ClusterError
    from dotaudit.pipeline import expand_inputs

    if args.workers is not None:
        raise UsageError("--workers and --cluster: the cluster's workers do the work")
    if args.evidence:
        raise UsageError("--evidence reads the captures here: not with --cluster")
    urls: list[str] = []
    names: list[str] = []
    for argument in args.inputs:
        if "://" in argument and not argument.startswith("file://"):
            urls.append(argument)  # read by the workers; checked there
            names.append(argument)
            continue
        # Local files are named as given (as a local run names them) and read by their
        # absolute path: the workers may run in another directory.
        for path in expand_inputs([argument.removeprefix("file://")]):
            urls.append(str(path.resolve()))
            names.append(str(path))
    if not urls:
        raise InputError("no capture files found in " + ", ".join(args.inputs))

    def show(state: ClusterProgress) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(
                f"\rcluster: {state.files_done}/{state.files} files, {state.packets} packets, "
                f"{state.shuffled_bytes / 1e6:.1f} MB shuffled"
            )

    try:
        report = analyze_on_cluster(
            urls, context, args.cluster, progress=show, generated_at=timestamp(), names=names
        )
    except ClusterError as exc:
        raise UsageError(str(exc)) from None
    if sys.stderr.isatty():
        sys.stderr.write("\r" + " " * 80 + "\r")
    write_report(report, options)
    return exit_status(report, options.fail_on)
