"""``dotaudit analyze``: findings with frame-level evidence from captures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dotaudit.cli import UsageError
from dotaudit.cli.events import add_prefilter_option, note_reader, quiet_gc
from dotaudit.cli.output import (
    ProgressBar,
    ReportOptions,
    add_grouping_options,
    add_report_options,
    add_strict_option,
    exit_status,
    grouping,
    print_input_notes,
    progress_bar,
    refuse_overwriting_inputs,
    report_incomplete_inputs,
    report_options,
    timestamp,
    write_report,
)
from dotaudit.cli.redaction import add_redaction_options, redaction_options, write_redacted_evidence
from dotaudit.errors import InputError, OutputError

if TYPE_CHECKING:
    from dotaudit.detect.base import Context
    from dotaudit.model.policy import Policy

DESCRIPTION = (
    "Analyze captures: plaintext DNS leaks, DoT sessions, fallbacks, SNI, DoH/DoQ and padding "
    "compliance."
)
EXAMPLES = """
  dotaudit analyze pcaps/09-office.pcap -o reports/office.html
  dotaudit analyze pcaps/ --evidence reports/evidence -o reports/audit.json --fail-on medium
  dotaudit analyze pcaps/09-office.pcap --redact --redact-key ~/.dotaudit.key -o handover.html
  dotaudit analyze - -o reports/piped.json
"""


def add_arguments(analyze: argparse.ArgumentParser) -> None:
    analyze.add_argument(
        "inputs", nargs="+", metavar="FILE|DIR|-", help="captures; - reads standard input"
    )
    add_report_options(analyze)
    add_strict_option(analyze)
    analyze.add_argument("--policy", metavar="FILE", help="audit policy (TOML)")
    analyze.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="files or capture sets analyzed in parallel (default: cores)",
    )
    add_grouping_options(analyze)
    analyze.add_argument(
        "--evidence",
        metavar="DIR",
        help="write a small pcap of each finding's frames here (a new directory, or one "
        "dotaudit wrote before: its parent must exist)",
    )
    add_prefilter_option(analyze)
    add_redaction_options(analyze)
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
    from dotaudit.model.policy import Policy
    from dotaudit.pipeline import analyze, select_inputs

    quiet_gc()
    options = report_options(args)
    redaction = redaction_options(args)
    if args.evidence and "-" in args.inputs:
        raise UsageError(
            "--evidence copies frames from the captures again, and standard input can be "
            "read only once: save the capture to a file and analyze that"
        )
    policy = _load_policy(args.policy) if args.policy else Policy()
    if args.cluster:
        return _run_on_cluster(args, options, Context(policy=policy), redaction)
    selection = select_inputs(args.inputs)
    refuse_overwriting_inputs(options.output, selection.named)
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    evidence = _evidence_directory(args.evidence, selection.named) if args.evidence else None
    if not selection.paths:
        raise selection.nothing_to_read(args.inputs)
    prefilter = not args.no_prefilter
    note_reader(prefilter)

    def progress_for(label: str) -> ProgressBar | None:
        return progress_bar(label)

    report = analyze(
        selection.paths,
        Context(policy=policy),
        workers=workers,
        progress_for=progress_for,
        generated_at=timestamp(),
        grouping=grouping(args),
        skipped=selection.skipped,
        prefilter=prefilter,
    )
    if sys.stderr.isatty():
        sys.stderr.write("\r" + " " * 80 + "\r")
    original = report
    if redaction is not None:
        # Everything said from here on (warnings, the report, its judgement) is redacted.
        report, redactor = redaction.apply(original)
    print_input_notes(report.inputs)
    failed: OutputError | None = None
    if evidence is not None:  # first: the HTML report links the files that exist
        from dotaudit.capture.evidence import write_evidence
        from dotaudit.model.evidence import plan_evidence

        try:
            if redaction is not None:
                written = write_redacted_evidence(original, report, redactor, evidence)
            else:
                written = write_evidence(plan_evidence(report.sorted_findings()), evidence)
            state = "redacted " if redaction is not None else ""
            print(f"wrote {written} {state}evidence captures to {args.evidence}", file=sys.stderr)
        except OutputError as exc:
            failed = exc  # the report is still written, then the error is the exit status
    write_report(report, options)
    if failed is not None:
        raise failed
    report_incomplete_inputs(report, strict=args.strict)
    return exit_status(report, options.fail_on, strict=args.strict)


def _load_policy(path: str) -> Policy:
    """The policy file; whatever is wrong with it is one line naming it (exit 2)."""
    from dotaudit.model.policy import load_policy

    try:
        return load_policy(path)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise InputError(f"{path}: not a valid policy ({exc})") from None


def _evidence_directory(directory: str, inputs: list[Path]) -> Path:
    """``--evidence DIR`` checked and made ready before any work: never a directory that
    holds an input, never one that holds other files (its marker would hide them from
    later directory scans), never a missing parent created on the way."""
    from dotaudit.capture.evidence import prepare_evidence_directory

    folder = Path(directory)
    resolved = folder.resolve()
    for path in inputs:
        if resolved in path.resolve().parents:
            raise UsageError(
                f"{directory}: holds the input {path} (--evidence needs its own directory)"
            )
    prepare_evidence_directory(folder)
    return folder


def _run_on_cluster(
    args: argparse.Namespace, options: ReportOptions, context: Context, redaction: Any
) -> int:
    from dotaudit.cluster.engine import ClusterProgress, analyze_on_cluster
    from dotaudit.errors import ClusterError
    from dotaudit.pipeline import input_groups, select_inputs

    if args.workers is not None:
        raise UsageError("--workers and --cluster: the cluster's workers do the work")
    if args.evidence:
        raise UsageError("--evidence reads the captures here: not with --cluster")
    if "-" in args.inputs:
        raise UsageError("standard input is read here: not with --cluster")
    remote = [a for a in args.inputs if "://" in a and not a.startswith("file://")]
    local = [a.removeprefix("file://") for a in args.inputs if a not in remote]
    # Local files are chosen as a local run chooses them (each read once, evidence
    # directories skipped), named as given and read by their absolute path: the workers
    # may run in another directory. URLs are read, and checked, by the workers. Inputs
    # keep the order they were given in.
    selection = select_inputs(local) if local else None
    if selection is not None:
        refuse_overwriting_inputs(options.output, selection.named)
    chosen = set(selection.paths) if selection else set()
    urls: list[str] = []
    names: list[str] = []
    for argument in args.inputs:
        if argument in remote:
            urls.append(argument)
            names.append(argument)
            continue
        for path in select_inputs([argument.removeprefix("file://")]).paths:
            if path in chosen:
                chosen.discard(path)
                urls.append(str(path.resolve()))
                names.append(str(path))
    if not urls:
        raise (
            selection.nothing_to_read(args.inputs)
            if selection
            else InputError("no capture files found in " + ", ".join(args.inputs))
        )

    # Capture sets are read as a local run reads them: each as one timeline.
    number = {url: n for n, url in enumerate(urls)}
    local_urls = [url for url in urls if url not in remote]
    found = input_groups(local_urls, grouping(args)) if local_urls else []
    sets = {number[group.files[0]]: group for group in found if len(group.files) > 1}
    in_sets = {number[f] for group in sets.values() for f in group.files}
    groups = [[number[f] for f in group.files] for group in sets.values()]
    groups += [[n] for n in range(len(urls)) if n not in in_sets]
    groups.sort(key=lambda group: group[0])

    def show(state: ClusterProgress) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(
                f"\rcluster: {state.files_done}/{state.files} files, {state.packets} packets, "
                f"{state.shuffled_bytes / 1e6:.1f} MB shuffled"
            )

    try:
        report = analyze_on_cluster(
            urls,
            context,
            args.cluster,
            progress=show,
            generated_at=timestamp(),
            names=names,
            groups=groups,
            capture_sets=sets,
        )
    except ClusterError as exc:
        raise UsageError(str(exc)) from None
    if sys.stderr.isatty():
        sys.stderr.write("\r" + " " * 80 + "\r")
    if selection is not None:
        report.inputs.extend(item.to_dict() for item in selection.skipped)
    if redaction is not None:
        report, _ = redaction.apply(report)
    print_input_notes(report.inputs)
    write_report(report, options)
    report_incomplete_inputs(report, strict=args.strict)
    return exit_status(report, options.fail_on, strict=args.strict)
