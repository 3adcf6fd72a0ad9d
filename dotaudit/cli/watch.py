"""``dotaudit watch``: live capture from an interface, judged as it comes."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from types import FrameType
from typing import IO, TYPE_CHECKING

from dotaudit.cli import UsageError
from dotaudit.cli.events import quiet_gc
from dotaudit.cli.output import (
    add_report_options,
    atomic_writer,
    exit_status,
    report_incomplete_inputs,
    report_options,
    timestamp,
    write_report,
)
from dotaudit.errors import InputError

if TYPE_CHECKING:
    from dotaudit.cli.output import ReportOptions
    from dotaudit.detect.base import Context
    from dotaudit.model.findings import Finding
    from dotaudit.model.report import AuditReport
    from dotaudit.watch import Interval, WatchSettings

DESCRIPTION = (
    "Capture live from an interface (libpcap, with a kernel filter for what the detectors "
    "need) and judge it as it comes: new findings as JSON lines, a summary line and the "
    "report at every interval, the final report at the end (--duration, Ctrl-C or SIGTERM). "
    "Needs CAP_NET_RAW (root)."
)
EXAMPLES = """
  dotaudit watch eth0 --duration 600 -o reports/live.html
  dotaudit watch lo --stream - --report-every 5 --fail-on none
  dotaudit watch eth0 --write caps/site.pcapng --ring 10 --ring-size 100 -o live.json
"""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _megabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected megabytes, got {text!r}") from None
    if not 0.001 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError("must be between 0.001 and 1000000 megabytes")
    return value


def add_arguments(watch: argparse.ArgumentParser) -> None:
    watch.add_argument("interface", metavar="IFACE", help="interface to capture on (lo, eth0)")
    watch.add_argument(
        "--filter",
        metavar="BPF",
        help="capture filter in libpcap's language instead of the default (DNS, DoT/DoQ, "
        "TLS ClientHellos, QUIC Initials, TCP SYN/FIN/RST, ICMP errors, tunnels); '' takes "
        "every packet",
    )
    watch.add_argument("--duration", type=_seconds, metavar="S", help="stop after S seconds")
    watch.add_argument(
        "--report-every",
        type=_seconds,
        default=10.0,
        metavar="S",
        help="a summary line on stderr, and -o rewritten, every S seconds (default 10)",
    )
    add_report_options(watch)
    watch.add_argument(
        "--stream",
        metavar="FILE",
        help="each new finding once, as a JSON line, when it is judged ('-': stdout)",
    )
    watch.add_argument(
        "--write", metavar="FILE", help="keep the captured packets (.pcap, or .pcapng)"
    )
    watch.add_argument(
        "--ring",
        type=_positive,
        metavar="N",
        help="with --write: a ring of N files (NAME_00001_TIME.EXT ...), the oldest deleted",
    )
    watch.add_argument(
        "--ring-size",
        type=_megabytes,
        metavar="MB",
        help="with --ring: start the next file after MB megabytes (default 100)",
    )
    watch.add_argument(
        "--buffer-size",
        type=_megabytes,
        default=32,
        metavar="MB",
        help="kernel buffer for packets not yet read (default 32): room for bursts and "
        "for the pauses of each interval's report",
    )
    watch.add_argument("--policy", metavar="FILE", help="audit policy (TOML)")


def run(args: argparse.Namespace) -> int:
    from dotaudit.cli.analyze import _load_policy
    from dotaudit.detect.base import Context
    from dotaudit.model.policy import Policy
    from dotaudit.watch import WatchSettings

    quiet_gc()
    options = report_options(args)
    if (args.ring or args.ring_size) and not args.write:
        raise UsageError("--ring and --ring-size need --write")
    if args.ring_size and not args.ring:
        raise UsageError("--ring-size needs --ring")
    policy = _load_policy(args.policy) if args.policy else Policy()
    settings = WatchSettings(
        interface=args.interface,
        filter_text=args.filter,
        duration=args.duration,
        report_every=args.report_every,
        write=args.write,
        ring_files=args.ring or 1,
        ring_size=round((args.ring_size or 100) * 1_000_000) if args.ring else None,
        buffer_size=round(args.buffer_size * 1_000_000),
    )
    stream = _open_stream(args.stream)
    try:
        return _watch(settings, Context(policy=policy), options, stream, args.stream)
    finally:
        if stream is not None and stream is not sys.stdout:
            stream.close()


def _open_stream(target: str | None) -> IO[str] | None:
    if target is None:
        return None
    if target == "-":
        return sys.stdout
    try:
        return open(target, "w", encoding="utf-8", buffering=1)
    except OSError as exc:
        raise InputError(f"{target}: {exc.strerror or exc}") from None


def _watch(
    settings: WatchSettings,
    context: Context,
    options: ReportOptions,
    stream: IO[str] | None,
    stream_name: str | None,
) -> int:
    from dotaudit.render.base import OutputFormat, render
    from dotaudit.watch import Watch

    def on_finding(finding: Finding) -> None:
        if stream is None:
            return
        try:
            stream.write(json.dumps(finding.to_dict(), allow_nan=False) + "\n")
            stream.flush()
        except OSError as exc:
            raise InputError(f"{stream_name}: {exc.strerror or exc}") from None

    def on_interval(interval: Interval, report: AuditReport) -> None:
        print(interval.line(settings.interface), file=sys.stderr, flush=True)
        if options.output is not None:
            body = render(report, options.format, output=options.output)
            with atomic_writer(options.output) as handle:
                handle.write(body)

    watch = Watch(
        settings,
        context,
        on_finding=on_finding,
        on_interval=on_interval,
        generated_at=timestamp,
    )

    def stop(_signum: int, _frame: FrameType | None) -> None:
        watch.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        which = "the default filter" if settings.filter_text is None else "--filter"
        print(
            f"dotaudit: watching {settings.interface} ({which}); Ctrl-C ends with the report",
            file=sys.stderr,
            flush=True,
        )
        report = watch.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if watch.last_interval is not None:
        line = watch.last_interval.line(settings.interface)
        print(f"{line}; ended by {watch.ended_by}", file=sys.stderr, flush=True)
    if options.output is None and stream is sys.stdout:
        # stdout carries the findings' stream: the report goes only to stderr, as text.
        if not options.quiet:
            sys.stderr.write(render(report, OutputFormat.TEXT))
    else:
        write_report(report, options)
    report_incomplete_inputs(report)
    return exit_status(report, options.fail_on)
