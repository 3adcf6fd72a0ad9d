"""Command line: ``dotaudit events | analyze | probe | report``.

Exit codes: 0 clean, 1 findings at or above ``--fail-on``, 2 usage or input error.
Data goes to stdout or ``-o``; summaries, warnings and progress go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any

from dotaudit import __version__
from dotaudit.errors import InputError
from dotaudit.model.findings import Severity
from dotaudit.model.report import AuditReport
from dotaudit.render.base import OutputFormat, RendererUnavailable, render

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

EVENT_TYPES = (
    "dns",
    "tls_client_hello",
    "tls_server_hello",
    "tls_certificate",
    "tls_alert",
    "quic_initial",
    "http_request",
    "connection",
    "anomaly",
)
TYPE_GROUPS = {
    "tls": tuple(t for t in EVENT_TYPES if t.startswith("tls_")),
    "quic": ("quic_initial",),
}


class UsageError(Exception):
    pass


def parse_types(spec: str | None) -> frozenset[str] | None:
    if not spec:
        return None
    chosen: set[str] = set()
    for name in (part.strip() for part in spec.split(",")):
        if not name:
            continue
        if name in TYPE_GROUPS:
            chosen.update(TYPE_GROUPS[name])
        elif name in EVENT_TYPES:
            chosen.add(name)
        else:
            known = ", ".join((*EVENT_TYPES, *TYPE_GROUPS))
            raise UsageError(f"--type: unknown record type {name!r} (known: {known})")
    return frozenset(chosen)


class ProgressBar:
    """A one-line progress bar on stderr, shown only when stderr is a terminal."""

    def __init__(self, label: str, stream: IO[str]) -> None:
        self.label = label
        self.stream = stream

    def __call__(self, done: int, total: int) -> None:
        fraction = min(done / total, 1.0) if total else 0.0
        filled = int(fraction * 30)
        self.stream.write(
            f"\r{self.label[-40:]:40} [{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%}"
        )
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r" + " " * 80 + "\r")
        self.stream.flush()


def _workers(text: str) -> int:
    """``--workers``: a positive count, or ``auto`` (0)."""
    if text == "auto":
        return 0
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return count


def _quiet_gc() -> None:
    """Fewer cyclic-GC passes while streaming a capture.

    Per packet the pipeline allocates and frees many small containers, which refcounting
    reclaims; the default threshold still runs ~400 collections per million packets
    (0.3-0.9 s) that find nothing. A collection still runs once 50,000 more objects are
    live than freed, so garbage cycles stay bounded. Frozen: the import-time objects,
    which every full collection would otherwise walk.
    """
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _note_reader(prefilter: bool) -> None:
    """Say once when the fast engine cannot be used: same results, slower."""
    if not prefilter:
        return
    from dotaudit.capture import libpcap

    if libpcap.load() is None:
        print(
            f"dotaudit: note: libpcap not usable ({libpcap.unavailable_reason()}); reading "
            "captures with the Python reader: same results, slower (Debian: apt install "
            "libpcap0.8)",
            file=sys.stderr,
        )


def cmd_events(args: argparse.Namespace) -> int:
    from dotaudit.pipeline import CaptureRun, atomic_writer, expand_inputs

    _quiet_gc()

    types = parse_types(args.type)
    paths = expand_inputs(args.inputs)
    if not paths:
        raise InputError("no capture files found in " + ", ".join(args.inputs))
    prefilter = not args.no_prefilter
    _note_reader(prefilter)
    if args.output and args.output != "-":
        handle_obj, finish = atomic_writer(args.output)
        handle: IO[str] = handle_obj  # type: ignore[assignment]
    else:
        handle, finish = sys.stdout, lambda ok: None
    ok = False
    status = EXIT_OK
    try:
        write = handle.write
        for path in paths:
            bar = ProgressBar(str(path), sys.stderr) if sys.stderr.isatty() else None
            shards = args.workers
            if shards != 1:  # multiprocessing is imported only when asked for
                from dotaudit.shards import ShardedRun, auto_shards

                shards = shards or auto_shards(path)
            if shards > 1:
                handle.flush()  # the shards are forked: nothing may be left to flush twice
                sys.stderr.flush()
                sharded = ShardedRun(path, shards, types, progress=bar, prefilter=prefilter)
                for text in sharded.lines():
                    write(text)
                summary = sharded.summary
            else:
                run = CaptureRun(path, progress=bar, hash_input=False, prefilter=prefilter)
                for text in run.lines(types):
                    write(text)
                summary = run.summary
            if bar is not None:
                bar.close()
            for warning in summary.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            if summary.truncated_at is not None and args.strict:
                print(
                    f"error: {path}: truncated at byte offset {summary.truncated_at} (--strict)",
                    file=sys.stderr,
                )
                status = EXIT_USAGE
        ok = True
    finally:
        finish(ok)
    return status


def _generated_at() -> str:
    # Report metadata only; detectors never read the wall clock.
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _choose_format(args: argparse.Namespace) -> OutputFormat:
    if args.format:
        return OutputFormat(args.format)
    if args.output and args.output != "-":
        by_extension = OutputFormat.from_path(args.output)
        if by_extension is None:
            raise UsageError(
                f"cannot tell the format from {args.output!r}; use --format json|jsonl|text|html"
            )
        return by_extension
    return OutputFormat.JSON


def write_report(report: AuditReport, args: argparse.Namespace) -> int:
    """Write the report where asked, the summary to stderr; return the exit code."""
    fmt = _choose_format(args)
    try:
        body = render(report, fmt, evidence_dir=getattr(args, "evidence", None), output=args.output)
    except RendererUnavailable as exc:
        raise UsageError(str(exc)) from None
    if args.output and args.output != "-":
        from dotaudit.pipeline import atomic_writer

        handle_obj, finish = atomic_writer(args.output)
        handle: IO[str] = handle_obj  # type: ignore[assignment]
        ok = False
        try:
            handle.write(body)
            ok = True
        finally:
            finish(ok)
    else:
        sys.stdout.write(body)
    if not (fmt is OutputFormat.TEXT and not args.output) and not args.quiet:
        sys.stderr.write(render(report, OutputFormat.TEXT))
    threshold = args.fail_on
    if threshold == "none":
        return EXIT_OK
    highest = report.highest_severity()
    if highest is not None and highest >= Severity.parse(threshold):
        return EXIT_FINDINGS
    return EXIT_OK


def cmd_analyze(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from dotaudit.detect.base import Context
    from dotaudit.model.policy import Policy, load_policy
    from dotaudit.pipeline import analyze, expand_inputs

    _quiet_gc()

    _choose_format(args)
    policy = load_policy(args.policy) if args.policy else Policy()
    paths = expand_inputs(args.inputs)
    if not paths:
        raise InputError("no capture files found in " + ", ".join(args.inputs))
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    _note_reader(not args.no_prefilter)

    def progress_for(path: Path) -> ProgressBar | None:
        return ProgressBar(str(path), sys.stderr) if sys.stderr.isatty() else None

    report = analyze(
        paths,
        Context(policy=policy),
        workers=workers,
        progress_for=progress_for,
        generated_at=_generated_at(),
        prefilter=not args.no_prefilter,
    )
    if sys.stderr.isatty():
        sys.stderr.write("\r" + " " * 80 + "\r")
    for item in report.inputs:
        for warning in item.get("warnings", []):
            print(f"warning: {warning}", file=sys.stderr)
    if args.evidence:
        from dotaudit.capture.evidence import write_evidence

        written = write_evidence(report, Path(args.evidence))
        print(f"wrote {written} evidence captures to {args.evidence}", file=sys.stderr)
    return write_report(report, args)


ANOMALY_SAMPLES = 50
MAX_REPORT_BYTES = 512 * 1024 * 1024
"""A saved JSON report larger than this is refused rather than read into memory."""


def load_report(path: str) -> AuditReport:
    """A saved ``--format json`` report; anything else is an input error naming the file."""
    from pathlib import Path

    source = Path(path)
    try:
        if source.stat().st_size > MAX_REPORT_BYTES:
            raise InputError(f"{path}: larger than {MAX_REPORT_BYTES >> 20} MiB")
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a JSON report ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a dotaudit report (not a JSON object)")
    from dotaudit.render.html_format import coerce_report

    try:
        return coerce_report(AuditReport.from_dict(data))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{path}: not a usable dotaudit report ({exc})") from None


def merge_reports(reports: Sequence[AuditReport], generated_at: str) -> AuditReport:
    """One report from several: inputs, findings, sections and anomalies concatenated.

    ``kind`` stays "analyze" or "probe" when every input has it, else "combined".
    """
    if len(reports) == 1:
        return reports[0]
    kinds = {r.kind for r in reports}
    versions = sorted({r.tool_version for r in reports if r.tool_version})
    policies = [r.policy for r in reports if r.policy]
    stamps = [r.generated_at for r in reports if r.generated_at]
    merged = AuditReport(
        kind=kinds.pop() if len(kinds) == 1 else "combined",
        generated_at=max(stamps) if stamps else generated_at,
        tool_version=", ".join(versions) or __version__,
    )
    if policies:
        same = all(p == policies[0] for p in policies)
        merged.policy = policies[0] if same else {"merged": policies}
    for report in reports:
        merged.inputs.extend(report.inputs)
        merged.findings.extend(report.findings)
        for name, rows in report.sections.items():
            merged.sections.setdefault(name, []).extend(rows)
        for what, count in report.anomalies.items():
            merged.anomalies[what] = merged.anomalies.get(what, 0) + int(count)
        room = max(ANOMALY_SAMPLES - len(merged.anomaly_samples), 0)
        merged.anomaly_samples.extend(report.anomaly_samples[:room])
    return merged


def cmd_report(args: argparse.Namespace) -> int:
    _choose_format(args)
    if args.evidence and len(args.inputs) > 1:
        raise UsageError("--evidence links need a single input report (finding numbers change)")
    reports = [load_report(path) for path in args.inputs]
    return write_report(merge_reports(reports, _generated_at()), args)


def _probe_config(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from dotaudit.probe import cli_part2
    from dotaudit.probe.base import ProbeConfig
    from dotaudit.probe.pins import normalise_pin
    from dotaudit.probe.registry import UnknownCheckError, with_dependencies
    from dotaudit.probe.target import TargetError, parse_target, valid_hostname

    if args.timeout <= 0 or args.budget <= 0:
        raise UsageError("--timeout and --budget must be positive")
    if args.name is not None and not valid_hostname(args.name):
        raise UsageError(f"--name: {args.name!r} is not a valid host name")
    try:
        pins = tuple(normalise_pin(p) for p in args.pin or ())
    except ValueError as exc:
        raise UsageError(f"--pin: {exc}") from None
    if args.ca and not Path(args.ca).is_file():
        raise InputError(f"--ca: {args.ca} is not a readable file")
    checks = None
    if args.checks:
        checks = frozenset(c.strip() for c in args.checks.split(",") if c.strip())
        try:
            with_dependencies(checks)
        except UnknownCheckError as exc:
            raise UsageError(f"--checks: {exc}") from None
    try:
        targets = [parse_target(t) for t in args.targets]
    except TargetError as exc:
        raise UsageError(f"target {exc}") from None
    config = ProbeConfig(
        name=args.name.rstrip(".").lower() if args.name else None,
        pins=pins,
        ca_file=args.ca,
        timeout=args.timeout,
        target_budget=args.budget,
        mode=args.mode,
        qname=args.qname,
        checks=checks,
    )
    try:
        config = cli_part2.with_options(config, args)
    except cli_part2.Part2UsageError as exc:
        raise UsageError(str(exc)) from None
    return config, targets


def cmd_probe(args: argparse.Namespace) -> int:
    from dotaudit.probe import cli_part2
    from dotaudit.probe.runner import probe_report, result_severity, run_targets, summary_lines

    if args.nagios:
        try:
            config, targets = _probe_config(args)
            return cli_part2.run_nagios(args, cli_part2.bulk_targets(args, config, targets))
        except (UsageError, InputError, cli_part2.Part2UsageError) as exc:
            print(f"DOT UNKNOWN - {exc}")
            return 3
    _choose_format(args)
    config, targets = _probe_config(args)
    if args.targets_file or args.stream or not targets:
        try:
            many = cli_part2.bulk_targets(args, config, targets)
        except cli_part2.Part2UsageError as exc:
            raise UsageError(str(exc)) from None
        tty = sys.stderr.isatty()
        bar = ProgressBar("probing", sys.stderr) if tty and len(many) > 1 else None
        code, results = cli_part2.run_many(args, config, many, write_report, bar)
        if bar is not None:
            bar.close()
        if code == cli_part2.EXIT_INTERRUPTED:
            return code
        return cli_part2.exit_code(results, config.mode, args.fail_on, code)
    bar = ProgressBar("probing", sys.stderr) if sys.stderr.isatty() and len(targets) > 1 else None
    results = run_targets(targets, config, progress=bar)
    if bar is not None:
        bar.close()
    report = probe_report(results, config, _generated_at())
    code = write_report(report, args)
    if not args.quiet:
        for result in results:
            sys.stderr.write("".join(line + "\n" for line in summary_lines(result)))
    if args.fail_on == "none":
        return code
    threshold = Severity.parse(args.fail_on)
    for result in results:
        severity = result_severity(result, config.mode)
        if severity is not None and severity >= threshold:
            return EXIT_FINDINGS
    return code


class _LazyArgumentParser(argparse.ArgumentParser):
    """A subcommand parser that adds its remaining arguments only when it is used.

    The probe options come from ``dotaudit.probe.cli_part2``, whose import pulls in
    dnspython and ssl (about 0.15 s); ``events`` and ``analyze`` never need them. The
    arguments are added before this parser parses or prints help, so ``probe --help``
    and probe's parsing are what they would be with everything registered up front.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.complete: Callable[[argparse.ArgumentParser], None] | None = None

    def _completed(self) -> None:
        complete, self.complete = self.complete, None
        if complete is not None:
            complete(self)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._completed()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._completed()
        return super().format_usage()

    def format_help(self) -> str:
        self._completed()
        return super().format_help()


def _add_probe_parser(sub: Any) -> None:
    probe = sub.add_parser(
        "probe",
        help="probe DoT resolvers: reachability, TLS, strict-mode authentication",
        description="Probe DNS-over-TLS resolvers and say what strict and opportunistic "
        "clients (RFC 8310) would do with each. TARGET is IP, IP:PORT, [IPv6]:PORT, "
        "NAME@IP or a host name (resolved and reported).",
    )
    probe.complete = _complete_probe_parser
    probe.set_defaults(handler=cmd_probe)


def _complete_probe_parser(probe: argparse.ArgumentParser) -> None:
    from dotaudit.probe import cli_part2

    probe.add_argument("targets", nargs="*", metavar="TARGET")
    probe.add_argument("--name", metavar="ADN", help="authentication domain name (RFC 8310)")
    probe.add_argument(
        "--pin", action="append", metavar="SPKI", help="base64 SHA-256 SPKI pin (repeatable)"
    )
    probe.add_argument("--ca", metavar="FILE", help="CA bundle (default: the system store)")
    probe.add_argument(
        "--timeout", type=float, default=3.0, metavar="S", help="per network step (default 3)"
    )
    probe.add_argument(
        "--budget", type=float, default=90.0, metavar="S", help="per target (default 90)"
    )
    probe.add_argument("--checks", metavar="LIST", help="comma-separated check IDs")
    probe.add_argument(
        "--mode",
        choices=["strict", "opportunistic"],
        default="strict",
        help="which client's verdict sets the exit code (default strict)",
    )
    probe.add_argument(
        "--qname", default="example.com", metavar="NAME", help="name to query (default example.com)"
    )
    cli_part2.add_arguments(probe)
    _add_report_options(probe)


def _add_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="OUT", help="output file (default: stdout)")
    parser.add_argument(
        "--format",
        choices=[f.value for f in OutputFormat],
        help="output format (default: from the -o extension, else json)",
    )
    parser.add_argument(
        "--fail-on",
        default="high",
        choices=[s.label for s in Severity] + ["none"],
        help="exit 1 when a finding is at or above this severity (default: high)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no text summary on stderr")


def _add_prefilter_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-prefilter",
        action="store_true",
        help="read every packet of every flow: connection records count everything, at "
        "the cost of speed (by default a flow is no longer read once there is nothing "
        "more to report about it, and libpcap skips its packets in C)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dotaudit",
        description="Audit what encrypted-DNS traffic leaks, and whether DoT resolvers can be "
        "trusted.",
    )
    parser.add_argument("--version", action="version", version=f"dotaudit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_LazyArgumentParser)
    sub.required = True

    events = sub.add_parser(
        "events",
        help="write the fact stream (JSONL) that the detectors consume",
        description="Dissect captures (pcap, pcapng, gzip) and write one JSON record per fact.",
    )
    events.add_argument("inputs", nargs="+", metavar="FILE|DIR")
    events.add_argument("-o", "--output", metavar="OUT", help="output file (default: stdout)")
    events.add_argument(
        "--type",
        metavar="LIST",
        help="comma-separated record types to keep: " + ",".join((*EVENT_TYPES, "tls", "quic")),
    )
    events.add_argument(
        "--strict", action="store_true", help="a truncated capture is an error (exit 2)"
    )
    events.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N|auto",
        help="processes per capture, each dissecting a share of its flows; the output is "
        "the same (default 1; auto = one per core, up to 4, for captures of 8 MiB or more)",
    )
    _add_prefilter_option(events)
    events.set_defaults(handler=cmd_events)

    analyze = sub.add_parser(
        "analyze",
        help="judge what captures leak about DNS: findings with frame-level evidence",
        description="Analyze captures: plaintext DNS leaks, DoT sessions, fallbacks, SNI, "
        "DoH/DoQ and padding compliance.",
    )
    analyze.add_argument("inputs", nargs="+", metavar="FILE|DIR")
    _add_report_options(analyze)
    analyze.add_argument("--policy", metavar="FILE", help="audit policy (TOML)")
    analyze.add_argument(
        "--workers", type=int, metavar="N", help="files analyzed in parallel (default: cores)"
    )
    analyze.add_argument(
        "--evidence", metavar="DIR", help="write a small pcap of each finding's frames here"
    )
    _add_prefilter_option(analyze)
    analyze.set_defaults(handler=cmd_analyze)

    report = sub.add_parser(
        "report",
        help="re-render saved JSON reports (several analyze and probe results merge into one)",
        description="Load reports written with --format json and write them in any format, "
        "e.g. one HTML file: dotaudit report a.json b.json -o reports/audit.html",
    )
    report.add_argument("inputs", nargs="+", metavar="REPORT.json")
    _add_report_options(report)
    report.add_argument(
        "--evidence",
        metavar="DIR",
        help="link findings to the evidence pcaps that 'analyze --evidence DIR' wrote",
    )
    report.set_defaults(handler=cmd_report)
    _add_probe_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except (InputError, UsageError) as exc:
        print(f"dotaudit: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        print("dotaudit: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
