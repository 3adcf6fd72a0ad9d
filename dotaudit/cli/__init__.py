"""Command line: ``dotaudit events | analyze | probe | report | watch``.

One module per subcommand (``events.py``, ``analyze.py``, ``report.py``, ``probe.py``,
``watch.py``), each with its ``DESCRIPTION``, ``EXAMPLES`` (the end of its ``--help``),
``add_arguments`` and ``run`` (parsed arguments in, exit status out); ``output.py`` holds
what they share.
Nothing below this package sees ``argparse``: each ``run`` turns its arguments into typed
settings first.

Exit codes: 0 clean, 1 findings at or above ``--fail-on``, 2 usage, input or output
error (one line, ``dotaudit: PATH: reason``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from functools import partial
from importlib import import_module
from typing import Any

from dotaudit import __version__
from dotaudit.errors import InputError

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command line that cannot be run as given; exit status 2."""


COMMANDS = {
    "events": "write the fact stream (JSONL) that the detectors consume",
    "analyze": "judge what captures leak about DNS: findings with frame-level evidence",
    "report": "re-render saved JSON reports (several analyze and probe results merge into one)",
    "probe": "probe DoT resolvers: reachability, TLS, strict-mode authentication",
    "watch": "capture live from an interface and judge it as it comes (needs root)",
}
"""The subcommands, each a module of this package, with the line ``dotaudit --help`` shows.
Adding one is a module with ``DESCRIPTION``, ``EXAMPLES``, ``add_arguments`` and ``run``,
plus its line here."""


EXAMPLES_HEADING = "examples:\n"


class LazyArgumentParser(argparse.ArgumentParser):
    """A subcommand parser that adds its arguments only when it is used.

    Each subcommand's module is imported by ``complete``, which runs before this parser
    parses, prints usage or prints help: ``events`` never imports ``dotaudit.probe``
    (dnspython, ssl: about 0.15 s) or the report renderers, and ``probe --help`` is what
    it would be with everything registered up front.
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


class _HelpFormatter(argparse.HelpFormatter):
    """The examples at the end of ``--help`` kept line by line as written; other text
    wrapped at spaces only, so that a check ID such as ``rst-injection`` stays whole."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith(EXAMPLES_HEADING):
            return "".join(indent + line + "\n" for line in text.splitlines())
        return super()._fill_text(text, width, indent)

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dotaudit",
        description="Audit what encrypted-DNS traffic leaks, and whether DoT resolvers can be "
        "trusted.",
    )
    parser.add_argument("--version", action="version", version=f"dotaudit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=LazyArgumentParser)
    sub.required = True
    for name, summary in COMMANDS.items():
        command = sub.add_parser(name, help=summary, formatter_class=_HelpFormatter)
        command.set_defaults(command_parser=command)
        command.complete = partial(_complete, name)
    return parser


def _complete(name: str, parser: argparse.ArgumentParser) -> None:
    """Give the ``name`` subcommand's parser its description, options, examples (the end
    of its ``--help``) and handler, from ``dotaudit.cli.<name>``."""
    module = import_module(f"dotaudit.cli.{name}")
    parser.description = module.DESCRIPTION
    parser.epilog = EXAMPLES_HEADING + module.EXAMPLES.strip("\n")
    module.add_arguments(parser)
    parser.set_defaults(handler=module.run)


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
