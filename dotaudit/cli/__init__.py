"""Command line: ``dotaudit events | analyze | probe | report``.

One module per subcommand (``events.py``, ``analyze.py``, ``report.py``, ``probe.py``),
each with its ``DESCRIPTION``, ``EXAMPLES`` (the end of its ``--help``), ``add_arguments``
and ``run`` (parsed arguments in, exit status out); ``output.py`` holds what they share.
Nothing below this package sees ``argparse``: each ``run`` turns its arguments into typed
settings first.

Exit codes: 0 clean, 1 findings at or above ``--fail-on``, 2 usage, input or output
error (one line, ``dotaudit: PATH: reason``), also an unreadable input (and, with
``--strict``, a partial one), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from functools import partial
from importlib import import_module
from typing import Any

from dotaudit import __version__
from dotaudit.errors import InputError, OutputError

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + 15
"""Ended by SIGTERM (as a shell reports a process its signal ended)."""


class UsageError(Exception):
    """A command line that cannot be run as given; exit status 2."""


COMMANDS = {
    "events": "write the fact stream (JSONL) that the detectors consume",
    "analyze": "judge what captures leak about DNS: findings with frame-level evidence",
    "report": "re-render saved JSON reports (several analyze and probe results merge into one)",
    "probe": "probe DoT resolvers: reachability, TLS, strict-mode authentication",
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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so that it ends as Ctrl-C ends it: temporary
    output files removed, worker processes stopped, one line on stderr."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(build_parser(), argv)
    previous = _on_sigterm(_terminate)
    try:
        code: int = args.handler(args)
        sys.stdout.flush()  # a full disk or a closed pipe shows here, not at exit
    except (InputError, OutputError, UsageError) as exc:
        print(f"dotaudit: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except OSError as exc:
        _flush_or_silence_stdout()
        print(f"dotaudit: {_where(exc, args.command)}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print(f"dotaudit: {args.command}: out of memory", file=sys.stderr)
        return EXIT_USAGE
    except Terminated:
        print("dotaudit: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("dotaudit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        _on_sigterm(previous)
    return code


def _on_sigterm(handler: Any) -> Any:
    """Install ``handler`` for SIGTERM (from the main thread only); the one it replaces."""
    import signal
    import threading

    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def _where(exc: OSError, command: str) -> str:
    """The path an OS error concerns, as the one-line error names it."""
    return str(exc.filename) if exc.filename is not None else command


def _flush_or_silence_stdout() -> None:
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        _silence_stdout()


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush at exit does not
    fail again on what could not be written (and print a second error)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
