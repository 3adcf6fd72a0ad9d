"""Command line: ``dotaudit events | analyze | probe | report``.

One module per subcommand (``events.py``, ``analyze.py``, ``report.py``, ``probe.py``),
each with ``add_parser`` (its options and ``--help`` examples) and ``run`` (parsed
arguments in, exit status out); ``output.py`` holds what they share. Nothing below this
package sees ``argparse``: each ``run`` turns its arguments into typed settings first.

Exit codes: 0 clean, 1 findings at or above ``--fail-on``, 2 usage, input or output
error (one line, ``dotaudit: PATH: reason``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from dotaudit import __version__
from dotaudit.errors import InputError

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command line that cannot be run as given; exit status 2."""


class LazyArgumentParser(argparse.ArgumentParser):
    """A subcommand parser that adds its arguments only when it is used.

    The probe options name check IDs and defaults from ``dotaudit.probe``, whose import
    pulls in dnspython and ssl (about 0.15 s); ``events`` and ``analyze`` never need them.
    ``complete`` runs before this parser parses, prints usage or prints help, so
    ``probe --help`` and probe's parsing are what they would be with everything
    registered up front.
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


def build_parser() -> argparse.ArgumentParser:
    # The subcommand modules import this one (UsageError, the exit codes): imported here.
    from dotaudit.cli import analyze, events, probe, report

    parser = argparse.ArgumentParser(
        prog="dotaudit",
        description="Audit what encrypted-DNS traffic leaks, and whether DoT resolvers can be "
        "trusted.",
    )
    parser.add_argument("--version", action="version", version=f"dotaudit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=LazyArgumentParser)
    sub.required = True
    for command in (events, analyze, report, probe):
        command.add_parser(sub)
    return parser


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written; option help wrapped at spaces only, so that a check ID
    such as ``rst-injection`` is never split over two lines."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def subcommand_parser(
    sub: Any, name: str, *, help: str, description: str, examples: str
) -> argparse.ArgumentParser:
    """A subcommand's parser, its ``--help`` ending with ``examples`` as written."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=description,
        epilog="examples:\n" + examples.strip("\n"),
        formatter_class=_HelpFormatter,
    )
    parser.set_defaults(command_parser=parser)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse; an unknown option is reported with the usage of the subcommand it followed."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        words = list(sys.argv[1:] if argv is None else argv)
        before = words[: words.index(args.command)] if args.command in words else words
        owner = parser if any(word in before for word in unknown) else args.command_parser
        owner.error("unrecognized arguments: " + " ".join(unknown))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(build_parser(), argv)
    try:
        code: int = args.handler(args)
    except (InputError, UsageError) as exc:
        print(f"dotaudit: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        print("dotaudit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code
