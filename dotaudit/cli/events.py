"""``dotaudit events``: the fact stream (JSONL) that the detectors consume."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from dotaudit.cli import EXIT_OK, EXIT_USAGE, UsageError
from dotaudit.cli.output import (
    OutputStream,
    ProgressBar,
    add_grouping_options,
    add_strict_option,
    atomic_directory,
    atomic_writer,
    grouping,
    output_path,
    print_input_notes,
    progress_bar,
    refuse_output_directory,
    refuse_overwriting_inputs,
    standard_output,
)

if TYPE_CHECKING:
    from dotaudit.capture.sets import InputGroup
    from dotaudit.model.report import InputSummary
    from dotaudit.pipeline import InputSelection
    from dotaudit.render.parquet import ParquetEventWriter, Row

EVENT_TYPES = (
    "dns",
    "tls_client_hello",
    "tls_server_hello",
    "tls_certificate",
    "tls_alert",
    "quic_initial",
    "http_request",
    "host_identity",
    "connection",
    "anomaly",
)
FORMATS = ("jsonl", "parquet")
PARQUET_MISSING = "--format parquet needs pyarrow: pip install 'dotaudit[parquet]'"
TYPE_GROUPS = {
    "tls": tuple(t for t in EVENT_TYPES if t.startswith("tls_")),
    "quic": ("quic_initial",),
}

DESCRIPTION = "Dissect captures (pcap, pcapng, gzip) and write one JSON record per fact."
EXAMPLES = """
  dotaudit events pcaps/01-kdig-strict-dot.pcap
  dotaudit events pcaps/ --type dns,tls -o reports/events.jsonl
  dotaudit events pcaps/09-office.pcap --type connection --workers auto --strict
  dotaudit events - --type dns -o reports/piped.jsonl
"""


def add_arguments(events: argparse.ArgumentParser) -> None:
    events.add_argument(
        "inputs", nargs="+", metavar="FILE|DIR|-", help="captures; - reads standard input"
    )
    events.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output file (default: stdout); for parquet a directory to create (new or empty)",
    )
    events.add_argument(
        "--format",
        choices=FORMATS,
        default="jsonl",
        help="jsonl: one JSON record per line; parquet: a dataset under -o DIR, "
        "DIR/type=TYPE/date=YYYY-MM-DD/part-NNNNN.parquet (needs pyarrow) (default: jsonl)",
    )
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
        "the same (default 1; auto = one per core, up to 4, for captures of 8 MiB or more; "
        "standard input is read by one)",
    )
    add_grouping_options(events)
    add_prefilter_option(events)


def add_prefilter_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-prefilter",
        action="store_true",
        help="read every packet of every flow: connection records count everything, at "
        "the cost of speed (by default a flow is no longer read once there is nothing "
        "more to report about it, and libpcap skips its packets in C)",
    )


def note_reader(prefilter: bool) -> None:
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
    from dotaudit.pipeline import input_groups, select_inputs

    quiet_gc()
    types = parse_types(args.type)
    if args.format == "parquet":
        return _run_parquet(args, types)
    output = output_path(args.output)
    selection = select_inputs(args.inputs)
    refuse_overwriting_inputs(output, selection.named)
    for warning in selection.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    if not selection.paths:
        raise selection.nothing_to_read(args.inputs)
    groups = input_groups(selection.paths, grouping(args))
    prefilter = not args.no_prefilter
    note_reader(prefilter)
    if output is None:
        return _write_events(groups, standard_output(), types, args.workers, args.strict, prefilter)
    with atomic_writer(output) as handle:
        return _write_events(groups, handle, types, args.workers, args.strict, prefilter)


def _write_events(
    groups: list[InputGroup],
    handle: OutputStream,
    types: frozenset[str] | None,
    workers: int,
    strict: bool,
    prefilter: bool,
) -> int:
    from dotaudit.model.report import PARTIAL, UNREADABLE
    from dotaudit.pipeline import group_label, out_of_memory

    status = EXIT_OK
    for group in groups:
        label = group_label(group)
        bar = progress_bar(label)
        try:
            summaries = _write_group(group, handle, types, workers, bar, prefilter)
        except MemoryError:
            raise out_of_memory(Path(label)) from None
        if bar is not None:
            bar.close()
        print_input_notes([summary.to_dict() for summary in summaries])
        for summary in summaries:
            judged = summary.completeness()
            if judged.status == UNREADABLE:
                print(f"dotaudit: {summary.path}: unreadable: {judged.reason}", file=sys.stderr)
                status = EXIT_USAGE
            elif judged.status == PARTIAL and strict:
                print(
                    f"dotaudit: {summary.path}: partial: {judged.reason} (--strict)",
                    file=sys.stderr,
                )
                status = EXIT_USAGE
    handle.flush()
    return status


def _write_group(
    group: InputGroup,
    handle: OutputStream,
    types: frozenset[str] | None,
    workers: int,
    bar: ProgressBar | None,
    prefilter: bool,
) -> list[InputSummary]:
    """The events of one capture (a file, standard input or the sets of a group of files)
    to ``handle``; returns what was read, one summary per file."""
    from dotaudit.pipeline import capture_runs

    write = handle.write
    shards = 1 if group.is_stdin else workers
    if shards != 1:  # multiprocessing is imported only when asked for
        from dotaudit.parallel_events import ShardedRun, auto_shards

        shards = shards or auto_shards(group)
    if shards > 1:
        handle.flush()  # the shards are forked: nothing may be left to flush twice
        sys.stderr.flush()
        sharded = ShardedRun(group, shards, types, progress=bar, prefilter=prefilter)
        for text in sharded.lines():
            write(text)
        return sharded.summaries
    summaries: list[InputSummary] = []
    for capture in capture_runs(group, progress=bar, hash_input=False, prefilter=prefilter):
        for text in capture.lines(types):
            write(text)
        summaries.extend(capture.summaries)
    return summaries


def _readable(selection: InputSelection, arguments: list[str]) -> list[Path]:
    """The inputs to read; the selection's warnings on stderr."""
    for warning in selection.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    if not selection.paths:
        raise selection.nothing_to_read(arguments)
    return selection.paths


def _judge_input(path: Path, summary: InputSummary, strict: bool) -> int:
    """The reader's warnings on stderr, and the exit status the input earns: 2 when it was
    unreadable, or read only in part under ``--strict``."""
    from dotaudit.model.report import PARTIAL, UNREADABLE

    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    judged = summary.completeness()
    if judged.status == UNREADABLE:
        print(f"dotaudit: {path}: unreadable: {judged.reason}", file=sys.stderr)
        return EXIT_USAGE
    if judged.status == PARTIAL and strict:
        print(f"dotaudit: {path}: partial: {judged.reason} (--strict)", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


# -- Parquet ---------------------------------------------------------------------------


def _run_parquet(args: argparse.Namespace, types: frozenset[str] | None) -> int:
    from dotaudit.pipeline import select_inputs

    if not args.output or args.output == "-":
        raise UsageError("--format parquet needs -o DIR (a directory to create)")
    # The dataset is written by this process, one capture file after another: each file's
    # rows name its own frames (a capture set's merged timeline and shards of one file are
    # for the JSON lines).
    if args.workers != 1:
        raise UsageError("--format parquet writes from one process: leave out --workers")
    if getattr(args, "as_one", False) or "-" in args.inputs:
        raise UsageError("--format parquet reads capture files one by one: no --as-one or -")
    try:
        from dotaudit.render.parquet import ParquetEventWriter
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] != "pyarrow":
            raise
        raise UsageError(PARQUET_MISSING) from None
    target: str = args.output
    refuse_output_directory(target)  # before any work; the rename at the end checks again
    paths = _readable(select_inputs(args.inputs), args.inputs)
    prefilter = not args.no_prefilter
    note_reader(prefilter)
    with atomic_directory(target) as directory:
        writer = ParquetEventWriter(directory)
        try:
            status = _write_parquet(
                paths, writer, types, args.workers, args.strict, target, prefilter
            )
            _output_step(writer.close, target)
        except BaseException:
            writer.abort()
            raise
    return status


def _output_step(step: Callable[[], None], target: str) -> None:
    """A write into the dataset; an OS error (disk full, permissions) becomes one line
    naming ``target``, never a traceback."""
    try:
        step()
    except OSError as exc:
        raise UsageError(f"{target}: {exc.strerror or exc}") from None


def _write_parquet(
    paths: list[Path],
    writer: ParquetEventWriter,
    types: frozenset[str] | None,
    workers: int,
    strict: bool,
    target: str,
    prefilter: bool,
) -> int:
    from dotaudit.pipeline import out_of_memory

    status = EXIT_OK
    for path in paths:
        bar = progress_bar(str(path))
        try:
            summary = _write_one_parquet(path, writer, types, workers, bar, target, prefilter)
        except MemoryError:
            raise out_of_memory(path) from None
        if bar is not None:
            bar.close()
        status = max(status, _judge_input(path, summary, strict))
    return status


def _write_one_parquet(
    path: Path,
    writer: ParquetEventWriter,
    types: frozenset[str] | None,
    workers: int,
    bar: ProgressBar | None,
    target: str,
    prefilter: bool,
) -> InputSummary:
    """The events of one capture file into the dataset; returns what was read."""
    from dotaudit.pipeline import CaptureRun
    from dotaudit.render.parquet import encode_event

    run = CaptureRun(path, progress=bar, hash_input=False, prefilter=prefilter)
    batches: Iterator[list[tuple[str, Row]]] = run.records(encode_event, types)
    for batch in batches:
        _output_step(partial(writer.write, batch), target)
    return run.summary
