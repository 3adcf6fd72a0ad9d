"""Command line: ``dotaudit events | analyze | probe | report``.

Exit codes: 0 clean, 1 findings at or above ``--fail-on``, 2 usage or input error.
Data goes to stdout or ``-o``; summaries, warnings and progress go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import IO, Any

from dotaudit import __version__
from dotaudit.errors import InputError
from dotaudit.model.events import EVENTS_SCHEMA, Event

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


def cmd_events(args: argparse.Namespace) -> int:
    from dotaudit.pipeline import CaptureRun, atomic_writer, expand_inputs

    types = parse_types(args.type)
    paths = expand_inputs(args.inputs)
    if not paths:
        raise InputError("no capture files found in " + ", ".join(args.inputs))
    if args.output and args.output != "-":
        handle_obj, finish = atomic_writer(args.output)
        handle: IO[str] = handle_obj  # type: ignore[assignment]
    else:
        handle, finish = sys.stdout, lambda ok: None
    ok = False
    status = EXIT_OK
    try:
        dumps = json.dumps
        write = handle.write
        for path in paths:
            bar = ProgressBar(str(path), sys.stderr) if sys.stderr.isatty() else None
            run = CaptureRun(path, progress=bar)
            for event in run.events():
                if types is None or event.type in types:
                    write(dumps(_event_record(event), separators=(",", ":")) + "\n")
            if bar is not None:
                bar.close()
            summary = run.summary
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


def _event_record(event: Event) -> dict[str, Any]:
    record = event.to_dict()
    record["schema"] = EVENTS_SCHEMA
    return record


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dotaudit",
        description="Audit what encrypted-DNS traffic leaks, and whether DoT resolvers can be "
        "trusted.",
    )
    parser.add_argument("--version", action="version", version=f"dotaudit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
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
    events.set_defaults(handler=cmd_events)
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
