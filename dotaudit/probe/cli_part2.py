"""The part-2 options of ``dotaudit probe``: check options, bulk targets with streamed
JSON lines, and ``--nagios``. cli.py calls in here so that its own code stays small.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from dotaudit.errors import InputError
from dotaudit.probe.base import ProbeConfig
from dotaudit.probe.bulk import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PER_ADDRESS,
    BulkTarget,
    JsonlStream,
    aggregate,
    parse_targets_file,
    run_bulk,
)
from dotaudit.probe.checks.keepalive import DEFAULT_MAX_IDLE_WAIT
from dotaudit.probe.nagios import UNKNOWN, Thresholds, nagios_line
from dotaudit.probe.runner import TargetResult, probe_report, result_severity
from dotaudit.probe.target import TargetError, valid_hostname

BULK_MAX_IDLE_WAIT = 5.0
"""Bulk default: the idle wait holds a concurrency slot for its whole length."""

MAX_TARGETS_FILE = 64 * 1024 * 1024
EXIT_INTERRUPTED = 130


class Part2UsageError(ValueError):
    """A bad part-2 option; cli.py reports it like its own usage errors."""


def add_arguments(probe: argparse.ArgumentParser) -> None:
    group = probe.add_argument_group("DNS checks, bulk probing and monitoring")
    group.add_argument(
        "--slow-qname",
        metavar="NAME",
        help="a name the resolver answers slowly, to show out-of-order answers",
    )
    group.add_argument(
        "--max-idle-wait",
        type=float,
        default=None,
        metavar="S",
        help=f"longest wait for the idle close (default {DEFAULT_MAX_IDLE_WAIT:g}; "
        f"{BULK_MAX_IDLE_WAIT:g} with --targets, where the wait would hold a concurrency slot)",
    )
    group.add_argument(
        "--online",
        action="store_true",
        help="run the checks that need internet (dnssec, qname-min)",
    )
    group.add_argument(
        "--targets",
        dest="targets_file",
        metavar="FILE",
        help="one target per line: TARGET [NAME] [pin=SPKI]...",
    )
    group.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"targets probed at once (default {DEFAULT_CONCURRENCY})",
    )
    group.add_argument(
        "--per-address",
        type=int,
        default=DEFAULT_PER_ADDRESS,
        metavar="N",
        help=f"targets probed at once on one address (default {DEFAULT_PER_ADDRESS})",
    )
    group.add_argument(
        "--stream",
        metavar="FILE.jsonl",
        help="append one JSON line per target as soon as it is done",
    )
    group.add_argument(
        "--nagios", action="store_true", help="one target; one monitoring-plugin line; exit 0/1/2/3"
    )
    group.add_argument("--cert-warn-days", type=float, default=14.0, metavar="D")
    group.add_argument("--cert-crit-days", type=float, default=7.0, metavar="D")
    group.add_argument("--handshake-warn-ms", type=float, metavar="MS")
    group.add_argument("--handshake-crit-ms", type=float, metavar="MS")
    group.add_argument("--query-warn-ms", type=float, metavar="MS")
    group.add_argument("--query-crit-ms", type=float, metavar="MS")  # fmt: skip


def options(args: argparse.Namespace) -> dict[str, Any]:
    """ProbeConfig.options from the command line."""
    if args.max_idle_wait is None:
        args.max_idle_wait = BULK_MAX_IDLE_WAIT if args.targets_file else DEFAULT_MAX_IDLE_WAIT
    if args.max_idle_wait < 0:
        raise Part2UsageError("--max-idle-wait must not be negative")
    if args.slow_qname is not None and not valid_hostname(args.slow_qname):
        raise Part2UsageError(f"--slow-qname: {args.slow_qname!r} is not a valid name")
    if args.concurrency < 1 or args.per_address < 1:
        raise Part2UsageError("--concurrency and --per-address must be at least 1")
    return {"max_idle_wait": args.max_idle_wait, "slow_qname": args.slow_qname,
            "online": args.online}  # fmt: skip


def bulk_targets(
    args: argparse.Namespace, config: ProbeConfig, given: list[Any]
) -> list[BulkTarget]:
    targets = [BulkTarget(t, config) for t in given]
    if args.targets_file:
        path = args.targets_file
        try:
            if path != "-" and os.path.getsize(path) > MAX_TARGETS_FILE:
                raise InputError(f"--targets: {path} is larger than 64 MiB")
            handle = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
            with handle:
                targets += parse_targets_file(handle, config)
        except OSError as exc:
            raise InputError(f"--targets: {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise InputError(f"--targets: {path} is not UTF-8 text") from None
        except TargetError as exc:
            raise Part2UsageError(f"--targets {path}: {exc}") from None
    if not targets:
        raise Part2UsageError("no target: give TARGET arguments or --targets FILE")
    return targets


def run_nagios(args: argparse.Namespace, targets: list[BulkTarget]) -> int:
    from dotaudit.probe.runner import run_target

    if len(targets) != 1:
        print("DOT UNKNOWN - --nagios takes exactly one target")
        return UNKNOWN
    item = targets[0]
    thresholds = Thresholds(
        args.cert_warn_days, args.cert_crit_days, args.handshake_warn_ms,
        args.handshake_crit_ms, args.query_warn_ms, args.query_crit_ms,
    )  # fmt: skip
    try:
        result = run_target(item.target, item.config)
    except Exception as exc:  # a monitoring plugin must always print its line
        print(f"DOT UNKNOWN - internal error: {type(exc).__name__}")
        return UNKNOWN
    state, line = nagios_line(result, thresholds, item.config.mode)
    print(line)
    return state


def _open_stream(path: str | None) -> IO[str] | None:
    if not path:
        return None
    try:
        return open(path, "a", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--stream: {path}: {exc.strerror or exc}") from None


def run_many(
    args: argparse.Namespace,
    config: ProbeConfig,
    targets: list[BulkTarget],
    write_report: Callable[[Any, argparse.Namespace], int],
    progress: Callable[[int, int], None] | None,
) -> tuple[int, list[TargetResult]]:
    """Probe in bulk; on Ctrl-C stop starting targets, report what finished, exit 130."""
    stream_handle = _open_stream(args.stream)
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

    previous = signal.signal(signal.SIGINT, on_signal)
    try:
        results = run_bulk(targets, args.concurrency, args.per_address,
                           stream.write if stream else None, progress, stop)  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, previous)
        if stream_handle is not None:
            stream_handle.close()
    report = probe_report(results, config, dt.datetime.now(dt.UTC).isoformat())
    report.policy["aggregate"] = aggregate(results)
    report.policy["interrupted"] = interrupted
    report.policy["targets_given"] = len(targets)
    code = write_report(report, args)
    if interrupted:
        return EXIT_INTERRUPTED, results
    return code, results


def exit_code(results: list[TargetResult], mode: str, fail_on: str, code: int) -> int:
    from dotaudit.model.findings import Severity

    if fail_on == "none":
        return code
    threshold = Severity.parse(fail_on)
    for result in results:
        severity = result_severity(result, mode)
        if severity is not None and severity >= threshold:
            return 1
    return code


def with_options(config: ProbeConfig, args: argparse.Namespace) -> ProbeConfig:
    return dataclasses.replace(config, options={**config.options, **options(args)})
