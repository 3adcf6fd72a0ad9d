"""``dotaudit events``: the fact stream (JSONL) that the detectors consume."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dotaudit.cli import EXIT_OK, EXIT_USAGE, UsageError
from dotaudit.cli.output import (
    OutputStream,
    ProgressBar,
    add_strict_option,
    atomic_writer,
    output_path,
    progress_bar,
    refuse_overwriting_inputs,
    standard_output,
)

if TYPE_CHECKING:
    from dotaudit.model.report import InputSummary

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

DESCRIPTION = "Dissect captures (pcap, pcapng, gzip) and write one JSON record per fact."
EXAMPLES = """
  dotaudit events pcaps/01-kdig-strict-dot.pcap
  dotaudit events pcaps/ --type dns,tls -o reports/events.jsonl
  dotaudit events pcaps/09-office.pcap --type connection --workers auto --strict
"""


def add_arguments(events: argparse.ArgumentParser) -> None:
    events.add_argument("inputs", nargs="+", metavar="FILE|DIR")
    events.add_argument("-o", "--output", metavar="OUT", help="output file (default: stdout)")
    events.add_argument(
        "--type",
        metavar="LIST",
        help="comma-separated record types to keep: " + ",".join((*EVENT_TYPES, "tls", "quic")),
    )
    add_strict_option(events)
    events.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N|auto",
        help="processes per capture, each dissecting a share of its flows; the output is "
        "the same (default 1; auto = one per core, up to 4, for captures of 8 MiB or more)",
    )


def parse_types(spec: str | None) -> frozenset[str] | None:
    """``--type``: record types and groups (``tls``, ``quic``); None keeps every type."""
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


def quiet_gc() -> None:
    """Fewer cyclic-GC passes while streaming a capture (``events`` and ``analyze``).

    Per packet the pipeline allocates and frees many small containers, which refcounting
    reclaims; the default threshold still runs ~400 collections per million packets
    (0.3-0.9 s) that find nothing. A collection still runs once 50,000 more objects are
    live than freed, so garbage cycles stay bounded. Frozen: the import-time objects,
    which every full collection would otherwise walk.
    """
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def run(args: argparse.Namespace) -> int:
    from dotaudit.pipeline import select_inputs

    quiet_gc()
    types = parse_types(args.type)
    output = output_path(args.output)
    selection = select_inputs(args.inputs)
    refuse_overwriting_inputs(output, selection.named)
    for warning in selection.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    if not selection.paths:
        raise selection.nothing_to_read(args.inputs)
    paths = selection.paths
    if output is None:
        return _write_events(paths, standard_output(), types, args.workers, args.strict)
    with atomic_writer(output) as handle:
        return _write_events(paths, handle, types, args.workers, args.strict)


def _write_events(
    paths: list[Path],
    handle: OutputStream,
    types: frozenset[str] | None,
    workers: int,
    strict: bool,
) -> int:
    from dotaudit.model.report import PARTIAL, UNREADABLE
    from dotaudit.pipeline import out_of_memory

    status = EXIT_OK
    for path in paths:
        bar = progress_bar(str(path))
        try:
            summary = _write_one(path, handle, types, workers, bar)
        except MemoryError:
            raise out_of_memory(path) from None
        if bar is not None:
            bar.close()
        for warning in summary.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        judged = summary.completeness()
        if judged.status == UNREADABLE:
            print(f"dotaudit: {path}: unreadable: {judged.reason}", file=sys.stderr)
            status = EXIT_USAGE
        elif judged.status == PARTIAL and strict:
            print(f"dotaudit: {path}: partial: {judged.reason} (--strict)", file=sys.stderr)
            status = EXIT_USAGE
    handle.flush()
    return status


def _write_one(
    path: Path,
    handle: OutputStream,
    types: frozenset[str] | None,
    workers: int,
    bar: ProgressBar | None,
) -> InputSummary:
    """The events of one capture to ``handle``; returns what was read."""
    from dotaudit.pipeline import CaptureRun

    write = handle.write
    shards = workers
    if shards != 1:  # multiprocessing is imported only when asked for
        from dotaudit.parallel_events import ShardedRun, auto_shards

        shards = shards or auto_shards(path)
    if shards > 1:
        handle.flush()  # the shards are forked: nothing may be left to flush twice
        sys.stderr.flush()
        sharded = ShardedRun(path, shards, types, progress=bar)
        for text in sharded.lines():
            write(text)
        return sharded.summary
    run = CaptureRun(path, progress=bar, hash_input=False)
    for text in run.lines(types):
        write(text)
    return run.summary
