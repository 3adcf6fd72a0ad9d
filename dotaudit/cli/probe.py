"""``dotaudit probe``: every probe option, one target or many (``--targets``,
``--stream``), and the monitoring-plugin line (``--nagios``).

This module is imported only when ``probe`` runs (:class:`dotaudit.cli.LazyArgumentParser`):
its options name check IDs and defaults from ``dotaudit.probe``, which ``events`` and
``analyze`` never import. :func:`probe_request` turns the parsed arguments into typed settings
(:class:`~dotaudit.probe.base.ProbeConfig`, :class:`BulkSettings`,
:class:`~dotaudit.probe.nagios.Thresholds`); nothing in ``dotaudit.probe`` sees argparse.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotaudit.cli import EXIT_INTERRUPTED, UsageError
from dotaudit.cli.discovery import (
    add_discovery_arguments,
    discovery_settings,
    run_discovery,
    wants_discovery,
)
from dotaudit.cli.output import (
    ReportOptions,
    add_report_options,
    exit_status,
    progress_bar,
    report_options,
    timestamp,
    write_report,
)
from dotaudit.errors import InputError
from dotaudit.model.report import AuditReport
from dotaudit.probe.base import DEFAULT_TARGET_BUDGET, CheckOptions, ProbeConfig
from dotaudit.probe.bulk import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PER_ADDRESS,
    BulkTarget,
    JsonlStream,
    bulk_summary,
    parse_targets_file,
    run_bulk,
)
from dotaudit.probe.checks.keepalive import DEFAULT_MAX_IDLE_WAIT
from dotaudit.probe.nagios import Thresholds, nagios_line
from dotaudit.probe.registry import CHECKS, UnknownCheckError, with_dependencies
from dotaudit.probe.runner import probe_report, run_target, run_targets
from dotaudit.probe.target import ProbeTarget, TargetError, parse_target, valid_hostname
from dotaudit.probe.tls_context import check_ca_file
from dotaudit.x509 import normalise_pin

MAX_TARGETS_FILE = 64 * 1024 * 1024
NAGIOS_UNKNOWN = 3
"""The monitoring-plugin exit status when the probe itself cannot run."""

DESCRIPTION = (
    "Probe DNS-over-TLS resolvers and say what strict and opportunistic clients (RFC 8310) "
    "would do with each. TARGET is IP, IP:PORT, [IPv6]:PORT, NAME@IP or a host name "
    "(resolved and reported). Without TARGET (or with --discover) it finds the network's "
    "resolvers and what they designate, and surveys what the network does to encrypted DNS."
)
EXAMPLES = """
  dotaudit probe -o reports/network.html
  dotaudit probe dns.quad9.net@9.9.9.9 -o reports/quad9.html
  dotaudit probe --targets resolvers.txt --stream reports/probe.jsonl -o reports/probe.json
  dotaudit probe dns.quad9.net@9.9.9.9 --nagios --cert-warn-days 21 --handshake-crit-ms 500
"""


def add_arguments(probe: argparse.ArgumentParser) -> None:
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
        "--budget",
        type=float,
        default=None,
        metavar="S",
        help=f"per target (default {DEFAULT_TARGET_BUDGET:g}, plus --max-idle-wait)",
    )
    probe.add_argument(
        "--checks",
        metavar="LIST",
        help="comma-separated check IDs; the checks they depend on run too (default: all): "
        + ", ".join(check.id for check in CHECKS),
    )
    probe.add_argument(
        "--mode",
        choices=["strict", "opportunistic"],
        default="strict",
        help="which client's verdict sets the exit code (default strict)",
    )
    probe.add_argument(
        "--qname", default="example.com", metavar="NAME", help="name to query (default example.com)"
    )

    checks = probe.add_argument_group("DNS checks")
    checks.add_argument(
        "--slow-qname",
        metavar="NAME",
        help="a name the resolver answers slowly, to show out-of-order answers",
    )
    checks.add_argument(
        "--max-idle-wait",
        type=float,
        default=None,
        metavar="S",
        help="measure the server's idle close, waiting at most S seconds (default "
        f"{DEFAULT_MAX_IDLE_WAIT:g}: not measured; the keepalive result names the S that "
        "would measure it)",
    )
    checks.add_argument(
        "--online",
        action="store_true",
        help="run the checks that need internet (dnssec, qname-min)",
    )

    bulk = probe.add_argument_group("many targets")
    bulk.add_argument(
        "--targets",
        dest="targets_file",
        metavar="FILE",
        help="one target per line: TARGET [NAME] [pin=SPKI]... ('-' reads stdin)",
    )
    bulk.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"targets probed at once (default {DEFAULT_CONCURRENCY})",
    )
    bulk.add_argument(
        "--per-address",
        type=int,
        default=DEFAULT_PER_ADDRESS,
        metavar="N",
        help=f"targets probed at once on one address (default {DEFAULT_PER_ADDRESS})",
    )
    bulk.add_argument(
        "--stream",
        metavar="FILE.jsonl",
        help="append one JSON line per target as soon as it is done",
    )

    nagios = probe.add_argument_group("monitoring (--nagios)")
    defaults = Thresholds()
    nagios.add_argument(
        "--nagios", action="store_true", help="one target; one monitoring-plugin line; exit 0/1/2/3"
    )
    nagios.add_argument(
        "--cert-warn-days",
        type=float,
        default=defaults.cert_warn_days,
        metavar="D",
        help="WARNING when the certificate expires within D days "
        f"(default {defaults.cert_warn_days:g})",
    )
    nagios.add_argument(
        "--cert-crit-days",
        type=float,
        default=defaults.cert_crit_days,
        metavar="D",
        help="CRITICAL when the certificate expires within D days "
        f"(default {defaults.cert_crit_days:g})",
    )
    for metric, what in (
        ("handshake", "the median TLS handshake"),
        ("query", "the answer to the first query"),
    ):
        for level, state in (("warn", "WARNING"), ("crit", "CRITICAL")):
            nagios.add_argument(
                f"--{metric}-{level}-ms",
                type=float,
                metavar="MS",
                help=f"{state} when {what} takes MS milliseconds or longer (default: no limit)",
            )
    add_discovery_arguments(probe)
    add_report_options(probe)


# -- the typed request -----------------------------------------------------------------


@dataclass(frozen=True)
class BulkSettings:
    """``--targets``, ``--stream``, ``--concurrency``, ``--per-address``."""

    targets_file: str | None
    stream: str | None
    concurrency: int
    per_address: int

    @property
    def wanted(self) -> bool:
        return self.targets_file is not None or self.stream is not None


@dataclass(frozen=True)
class ProbeRequest:
    """Everything one ``dotaudit probe`` command line asks for, checked and typed."""

    targets: tuple[ProbeTarget, ...]
    config: ProbeConfig
    bulk: BulkSettings
    nagios: bool
    """``--nagios``: print the monitoring-plugin line instead of a report."""
    thresholds: Thresholds
    """The ``--nagios`` warning and critical levels."""


def probe_request(args: argparse.Namespace) -> ProbeRequest:
    """The probe settings of a parsed command line; a bad value is a UsageError (or an
    InputError naming the file)."""
    if args.timeout <= 0 or (args.budget is not None and args.budget <= 0):
        raise UsageError("--timeout and --budget must be positive")
    if args.nagios and args.discover:
        raise UsageError("--discover cannot be combined with --nagios")
    if args.discover and (args.targets_file or args.stream):
        raise UsageError("--discover takes TARGET arguments, not --targets or --stream")
    if args.name is not None and not valid_hostname(args.name):
        raise UsageError(f"--name: {args.name!r} is not a valid host name")
    try:
        pins = tuple(normalise_pin(p) for p in args.pin or ())
    except ValueError as exc:
        raise UsageError(f"--pin: {exc}") from None
    if args.ca:
        if not Path(args.ca).is_file():
            raise InputError(f"{args.ca}: --ca is not a readable file")
        try:
            check_ca_file(args.ca)
        except ValueError as exc:
            raise InputError(f"{args.ca}: --ca: {exc}") from None
    checks = None
    if args.checks:
        checks = frozenset(c.strip() for c in args.checks.split(",") if c.strip())
        try:
            with_dependencies(checks)
        except UnknownCheckError as exc:
            raise UsageError(f"--checks: {exc}") from None
    try:
        targets = tuple(parse_target(t) for t in args.targets)
    except TargetError as exc:
        raise UsageError(f"target {exc}") from None
    max_idle_wait = DEFAULT_MAX_IDLE_WAIT if args.max_idle_wait is None else args.max_idle_wait
    if max_idle_wait < 0:
        raise UsageError("--max-idle-wait must not be negative")
    # The idle wait comes on top of the other checks, unless the budget was given.
    budget = DEFAULT_TARGET_BUDGET + max_idle_wait if args.budget is None else args.budget
    if args.slow_qname is not None and not valid_hostname(args.slow_qname):
        raise UsageError(f"--slow-qname: {args.slow_qname!r} is not a valid name")
    if args.concurrency < 1 or args.per_address < 1:
        raise UsageError("--concurrency and --per-address must be at least 1")
    config = ProbeConfig(
        name=args.name.rstrip(".").lower() if args.name else None,
        pins=pins,
        ca_file=args.ca,
        timeout=args.timeout,
        target_budget=budget,
        mode=args.mode,
        qname=args.qname,
        checks=checks,
        options=CheckOptions(
            online=args.online, max_idle_wait=max_idle_wait, slow_qname=args.slow_qname
        ),
    )
    thresholds = Thresholds(
        cert_warn_days=args.cert_warn_days,
        cert_crit_days=args.cert_crit_days,
        handshake_warn_ms=args.handshake_warn_ms,
        handshake_crit_ms=args.handshake_crit_ms,
        query_warn_ms=args.query_warn_ms,
        query_crit_ms=args.query_crit_ms,
    )
    bulk = BulkSettings(args.targets_file, args.stream, args.concurrency, args.per_address)
    return ProbeRequest(targets, config, bulk, args.nagios, thresholds)


# -- running -------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    if args.nagios:
        try:
            request = probe_request(args)
            targets = bulk_targets(request)
        except (UsageError, InputError) as exc:
            print(f"DOT UNKNOWN - {exc}")
            return NAGIOS_UNKNOWN
        return run_nagios(targets, request.thresholds)
    options = report_options(args)
    request = probe_request(args)
    if wants_discovery(args):
        return run_with_discovery(args, request, options)
    if request.bulk.wanted or not request.targets:
        many = bulk_targets(request)
        report, interrupted = run_many(request, many)
        write_report(report, options)
        return EXIT_INTERRUPTED if interrupted else exit_status(report, options.fail_on)

    bar = progress_bar("probing") if len(request.targets) > 1 else None
    results = run_targets(request.targets, request.config, progress=bar)
    if bar is not None:
        bar.close()
    report = probe_report(results, request.config, timestamp())
    write_report(report, options)
    return exit_status(report, options.fail_on)


def run_with_discovery(
    args: argparse.Namespace, request: ProbeRequest, options: ReportOptions
) -> int:
    """Discovery and the survey, plus the TARGETs if any were given, in one report."""
    settings = discovery_settings(args)
    results = run_targets(request.targets, request.config) if request.targets else []
    report = probe_report(results, request.config, timestamp())
    run_discovery(report, request.config, settings, options.quiet)
    write_report(report, options)
    return exit_status(report, options.fail_on)


def bulk_targets(request: ProbeRequest) -> list[BulkTarget]:
    """The TARGET arguments and the lines of ``--targets FILE``, each with its settings."""
    targets = [BulkTarget(t, request.config) for t in request.targets]
    path = request.bulk.targets_file
    if path:
        try:
            if path != "-" and os.path.getsize(path) > MAX_TARGETS_FILE:
                raise InputError(f"--targets: {path} is larger than 64 MiB")
            handle = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
            with handle:
                targets += parse_targets_file(handle, request.config)
        except OSError as exc:
            raise InputError(f"--targets: {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise InputError(f"--targets: {path} is not UTF-8 text") from None
        except TargetError as exc:
            raise UsageError(f"--targets {path}: {exc}") from None
    if not targets:
        raise UsageError("no target: give TARGET arguments or --targets FILE")
    return targets


def run_nagios(targets: list[BulkTarget], thresholds: Thresholds) -> int:
    """Print the one monitoring-plugin line; return its state (0-3)."""
    if len(targets) != 1:
        print("DOT UNKNOWN - --nagios takes exactly one target")
        return NAGIOS_UNKNOWN
    item = targets[0]
    try:
        result = run_target(item.target, item.config)
    except Exception as exc:  # a monitoring plugin must always print its line
        print(f"DOT UNKNOWN - internal error: {type(exc).__name__}")
        return NAGIOS_UNKNOWN
    state, line = nagios_line(result, thresholds, item.config.mode)
    print(line)
    return state


def run_many(request: ProbeRequest, targets: list[BulkTarget]) -> tuple[AuditReport, bool]:
    """Probe in bulk; on Ctrl-C stop starting targets and report what finished.

    Returns the report and whether the run was interrupted.
    """
    stream_handle = None
    if request.bulk.stream:
        try:
            stream_handle = open(request.bulk.stream, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"--stream: {request.bulk.stream}: {exc.strerror or exc}") from None
    stream = JsonlStream(stream_handle) if stream_handle else None
    stop = threading.Event()
    interrupted = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal interrupted
        if interrupted:  # a second Ctrl-C: leave now, the stream already has every result
            os._exit(EXIT_INTERRUPTED)
        interrupted = True
        stop.set()
        sys.stderr.write("\ninterrupted: finishing the targets already running ...\n")

    bar = progress_bar("probing") if len(targets) > 1 else None
    previous = signal.signal(signal.SIGINT, on_signal)
    try:
        results = run_bulk(
            targets,
            request.bulk.concurrency,
            request.bulk.per_address,
            stream.write if stream else None,
            bar,
            stop,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
        if stream_handle is not None:
            stream_handle.close()
        if bar is not None:
            bar.close()
    report = probe_report(
        results,
        request.config,
        timestamp(),
        bulk=bulk_summary(results, targets_given=len(targets), interrupted=interrupted),
    )
    return report, interrupted
