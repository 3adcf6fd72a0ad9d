"""Where results go: the report options, the format, the atomic writer, the one exit
status and the progress bar that every subcommand shares.

Data goes to stdout or ``-o``; summaries, warnings and progress go to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from dotaudit.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, UsageError
from dotaudit.errors import OutputError

if TYPE_CHECKING:  # imported where used: `events` writes no report and starts faster
    from dotaudit.capture.sets import Grouping
    from dotaudit.model.findings import Severity
    from dotaudit.model.report import AuditReport
    from dotaudit.render.base import OutputFormat

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
"""``generated_at`` of every report (UTC, whole seconds)."""


def timestamp() -> str:
    """Now, for report metadata only: detectors never read the wall clock."""
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime(TIMESTAMP_FORMAT)


# -- the report options ---------------------------------------------------------------


@dataclass(frozen=True)
class ReportOptions:
    """``-o``, ``--format``, ``--fail-on``, ``-q`` (and ``--evidence`` for HTML links)."""

    output: str | None
    """A file, or None for stdout."""
    format: OutputFormat
    fail_on: Severity | None
    """None: ``--fail-on none``, the exit status never says "findings"."""
    quiet: bool = False
    evidence_dir: str | None = None


def add_report_options(parser: argparse.ArgumentParser) -> None:
    from dotaudit.model.findings import Severity
    from dotaudit.render.base import OutputFormat

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


def add_grouping_options(parser: argparse.ArgumentParser) -> None:
    """``--separate`` and ``--as-one``: which input files are read as one timeline."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--separate",
        action="store_true",
        help="read every file on its own (default: rotated files of one capture, by name, "
        "interfaces and time, are read as one timeline; see docs/capture-sets.md)",
    )
    group.add_argument(
        "--as-one",
        action="store_true",
        help="read all input files as one capture, merged by timestamp",
    )


def print_input_notes(inputs: list[dict[str, Any]]) -> None:
    """Each input's warnings, and which files were read as one capture set, on stderr."""
    sets: dict[str, list[str]] = {}
    grouped_by: dict[str, str] = {}
    for item in inputs:
        for warning in item.get("warnings", []):
            print(f"warning: {warning}", file=sys.stderr)
        capture_set = item.get("set")
        if isinstance(capture_set, dict):
            name = str(capture_set.get("name"))
            sets.setdefault(name, []).append(str(item.get("path")))
            grouped_by[name] = str(capture_set.get("grouped_by"))
    for name, files in sets.items():
        print(
            f"note: {len(files)} files read as one capture ({grouped_by[name]}): "
            + ", ".join(files[:3])
            + (f" and {len(files) - 3} more" if len(files) > 3 else ""),
            file=sys.stderr,
        )


def grouping(args: argparse.Namespace) -> Grouping:
    from dotaudit.capture.sets import Grouping

    if args.separate:
        return Grouping.SEPARATE
    if args.as_one:
        return Grouping.AS_ONE
    return Grouping.AUTO


def report_options(args: argparse.Namespace) -> ReportOptions:
    """The report options of a parsed command line; a bad ``-o`` is a usage error now,
    before any work."""
    from dotaudit.model.findings import Severity

    output = output_path(args.output)
    return ReportOptions(
        output=output,
        format=choose_format(output, args.format),
        fail_on=None if args.fail_on == "none" else Severity.parse(args.fail_on),
        quiet=args.quiet,
        evidence_dir=getattr(args, "evidence", None),
    )


def output_path(output: str | None) -> str | None:
    """``-o`` as a file to write, or None for stdout (``-o -``). A directory is refused,
    and so is a file in a directory that does not exist: it is never created, since a
    typo should not go unnoticed."""
    if not output or output == "-":
        return None
    if Path(output).is_dir():
        raise UsageError(f"{output}: is a directory (-o takes a file name)")
    if output.endswith(("/", os.sep)):
        raise UsageError(f"{output}: names a directory (-o takes a file name)")
    parent = Path(output).parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise UsageError(f"{output}: {parent} {what} (output directories are not created)")
    return output


def refuse_overwriting_inputs(output: str | None, inputs: Iterable[Path]) -> None:
    """``-o`` must name none of the inputs, by resolved path or by inode (a symlink or a
    hard link to one): writing the report would replace it."""
    if output is None:
        return
    from dotaudit.files import same_file

    target = Path(output)
    if not target.exists():
        return
    for path in inputs:
        if same_file(target, path):
            shown = "" if str(path) == output else f" ({path})"
            raise UsageError(f"{output}: is an input{shown}; refusing to overwrite it")


def choose_format(output: str | None, name: str | None) -> OutputFormat:
    """``--format``, else the extension of ``-o``, else JSON."""
    from dotaudit.render.base import OutputFormat

    if name:
        return OutputFormat(name)
    if output is None:
        return OutputFormat.JSON
    by_extension = OutputFormat.from_path(output)
    if by_extension is None:
        raise UsageError(
            f"cannot tell the format from {output!r}; use --format json|jsonl|text|html"
        )
    return by_extension


# -- writing -------------------------------------------------------------------------


class OutputStream:
    """A text stream whose write errors name the output: a full disk, a read-only file
    system or ``/dev/full`` is one line, ``dotaudit: PATH: reason``, and exit status 2.
    (A closed pipe stays a ``BrokenPipeError``.)"""

    def __init__(self, stream: IO[str], name: str) -> None:
        self._stream = stream
        self.name = name

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(f"{self.name}: cannot write: {exc.strerror or exc}") from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(f"{self.name}: cannot write: {exc.strerror or exc}") from None


def standard_output() -> OutputStream:
    return OutputStream(sys.stdout, "<stdout>")


@contextmanager
def atomic_writer(target: str) -> Iterator[OutputStream]:
    """A text stream on ``target`` that appears whole or not at all.

    The text goes to a temporary file beside ``target``, renamed into place when the
    block ends normally and removed when it raises (Ctrl-C and SIGTERM included).
    Targets that are not regular files (``/dev/null``, a FIFO) are written directly. The
    directory must exist: it is not created.
    """
    path = Path(target)
    if path.is_dir():
        raise UsageError(f"{target}: is a directory")
    if path.exists() and not path.is_file():
        try:
            direct = path.open("w", encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"{target}: cannot write: {exc.strerror or exc}") from None
        stream = OutputStream(direct, target)
        try:
            yield stream
            stream.flush()
        except BaseException:
            # An interrupted or failed run: a FIFO or pipe whose reader stopped would
            # block the flush of what is still buffered forever; drop it instead.
            with suppress(OSError):
                os.close(direct.fileno())
            with suppress(OSError, ValueError):
                direct.close()
            raise
        finally:
            with suppress(OSError, ValueError):  # the flush above already said what failed
                direct.close()
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        handle = temporary.open("w", encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"{target}: cannot write: {exc.strerror or exc}") from None
    try:
        stream = OutputStream(handle, target)
        yield stream
        stream.flush()
        try:
            handle.close()
            os.replace(temporary, path)
        except OSError as exc:
            raise OutputError(f"{target}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        with suppress(OSError):  # what failed is already being raised
            handle.close()
        temporary.unlink(missing_ok=True)
        raise


def refuse_output_directory(target: str) -> Path:
    """``target`` as a directory for a new dataset: absent, or an empty directory."""
    path = Path(target)
    if path.is_dir():
        try:
            occupied = any(path.iterdir())
        except OSError as exc:
            raise UsageError(f"{target}: {exc.strerror or exc}") from None
        if occupied:
            raise UsageError(f"{target}: directory is not empty (give a new or empty one)")
    elif path.exists() or path.is_symlink():
        raise UsageError(f"{target}: exists and is not a directory")
    return path


@contextmanager
def atomic_directory(target: str) -> Iterator[Path]:
    """A temporary directory beside ``target`` that becomes ``target`` when the block ends
    normally, and is removed, with everything in it, when it raises (Ctrl-C too).

    ``target`` must be absent or an empty directory (:func:`refuse_output_directory`).
    """
    import shutil

    path = refuse_output_directory(target)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.mkdir()
    except OSError as exc:
        raise UsageError(f"{target}: {exc.strerror or exc}") from None
    try:
        yield temporary
        try:
            # rename(2) replaces an empty directory and fails on one that filled meanwhile.
            os.replace(temporary, path)
        except OSError as exc:
            raise UsageError(f"{target}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def write_report(report: AuditReport, options: ReportOptions) -> None:
    """The report where asked (``-o`` or stdout), and the text summary on stderr unless
    ``-q`` or the report itself is text on the terminal."""
    from dotaudit.render.base import OutputFormat, RendererUnavailable, render, render_chunks

    try:
        chunks = render_chunks(
            report, options.format, evidence_dir=options.evidence_dir, output=options.output
        )
    except RendererUnavailable as exc:
        raise UsageError(str(exc)) from None
    if options.output is not None:
        with atomic_writer(options.output) as handle:
            for chunk in chunks:
                handle.write(chunk)
    else:
        stdout = standard_output()
        for chunk in chunks:
            stdout.write(chunk)
        stdout.flush()
    if not (options.format is OutputFormat.TEXT and options.output is None) and not options.quiet:
        sys.stderr.write(render(report, OutputFormat.TEXT))


def exit_status(report: AuditReport, fail_on: Severity | None, *, strict: bool = False) -> int:
    """The exit status of a report: 2 when an input was unreadable (or, ``strict``, read
    only in part), since the audit is incomplete whatever it found; else 1 when what
    ``--fail-on`` weighs (its findings and probed targets,
    :meth:`AuditReport.exit_severity`) reaches the threshold, else 0."""
    from dotaudit.model.report import PARTIAL, UNREADABLE

    completeness = report.completeness_status()
    if completeness == UNREADABLE or (strict and completeness == PARTIAL):
        return EXIT_USAGE
    if fail_on is None:
        return EXIT_OK
    highest = report.exit_severity()
    return EXIT_FINDINGS if highest is not None and highest >= fail_on else EXIT_OK


def report_incomplete_inputs(report: AuditReport, *, strict: bool = False) -> None:
    """One error line on stderr per input that makes the exit status 2 (printed even
    under ``-q``): an unreadable one, and with ``strict`` a partial one."""
    from dotaudit.model.report import PARTIAL, UNREADABLE

    for path, judged in report.input_judgements():
        if judged.status == UNREADABLE:
            print(f"dotaudit: {path}: unreadable: {judged.reason}", file=sys.stderr)
        elif judged.status == PARTIAL and strict:
            print(f"dotaudit: {path}: partial: {judged.reason} (--strict)", file=sys.stderr)


def add_strict_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strict",
        action="store_true",
        help="an input read only in part (cut short, or a corrupt record) is an error "
        "(exit 2), as an unreadable input always is",
    )


# -- progress ------------------------------------------------------------------------


class ProgressBar:
    """A one-line progress bar on stderr."""

    def __init__(self, label: str, stream: IO[str]) -> None:
        self.label = label
        self.stream = stream

    def __call__(self, done: int, total: int) -> None:
        if total <= 0:  # a pipe: how much has come, since nobody knows how much will
            self.stream.write(f"\r{self.label[-40:]:40} {_size(done):>10} read")
            self.stream.flush()
            return
        fraction = min(done / total, 1.0)
        filled = int(fraction * 30)
        self.stream.write(
            f"\r{self.label[-40:]:40} [{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%}"
        )
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r" + " " * 80 + "\r")
        self.stream.flush()


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # unreachable


def progress_bar(label: str) -> ProgressBar | None:
    """A bar on stderr when stderr is a terminal, else None (logs get no bar)."""
    return ProgressBar(label, sys.stderr) if sys.stderr.isatty() else None
