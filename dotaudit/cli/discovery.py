"""``dotaudit probe --discover``: the options of discovery and the survey, turned into
typed settings (:class:`~dotaudit.probe.discovery.run.DiscoveryConfig`), and the run
that adds their sections to a probe report. ``dotaudit probe`` without a target
discovers too."""

from __future__ import annotations

import argparse
import json
import os
import sys

from dotaudit.errors import InputError
from dotaudit.model.report import AuditReport
from dotaudit.model.resolvers import ResolverDirectory, known_resolvers, parse_directory
from dotaudit.probe.base import ProbeConfig
from dotaudit.probe.discovery.dnr import LeasePaths
from dotaudit.probe.discovery.resolv_conf import RESOLV_CONF, SystemPaths
from dotaudit.probe.discovery.run import (
    DiscoveryConfig,
    add_to_report,
    discover,
    summary_lines,
)

MAX_KNOWN_FILE = 4 * 1024 * 1024


def add_discovery_arguments(probe: argparse.ArgumentParser) -> None:
    group = probe.add_argument_group(
        "the network as found (--discover; also without TARGET)",
        "the system's resolvers, their designated encrypted resolvers (DDR, RFC 9462), those "
        "the network names (DNR, RFC 9463), and a survey of what the network does to DoT, "
        "DoH, DoQ and port 53",
    )
    group.add_argument(
        "--discover", action="store_true", help="discover and survey (besides any TARGET)"
    )
    group.add_argument(
        "--resolv-conf",
        metavar="FILE",
        help=f"read the system resolvers from FILE (default {RESOLV_CONF}, following the "
        "systemd-resolved stub to its upstreams)",
    )
    group.add_argument(
        "--known",
        metavar="FILE|none",
        help="the resolvers to survey, in the format of dotaudit/data/resolvers.json "
        "(default: that built-in list of public resolvers); 'none' surveys only the "
        "designated resolvers found",
    )
    group.add_argument(
        "--lease",
        action="append",
        metavar="FILE",
        help="read DNR options from this DHCP lease file instead of the system's (repeatable)",
    )


def wants_discovery(args: argparse.Namespace) -> bool:
    """``--discover``, or no TARGET and no ``--targets`` at all."""
    return bool(args.discover) or (not args.targets and not args.targets_file)


def discovery_settings(args: argparse.Namespace) -> DiscoveryConfig:
    """The discovery settings of a parsed command line; a file that cannot be used is an
    InputError naming it."""
    system = SystemPaths()
    if args.resolv_conf:
        if not os.path.isfile(args.resolv_conf):
            raise InputError(f"--resolv-conf: {args.resolv_conf} is not a readable file")
        # A given file is the whole configuration: no stub is followed into this host's state.
        system = SystemPaths(args.resolv_conf, resolved_upstreams="", resolvectl=None)
    leases = LeasePaths()
    if args.lease:
        for path in args.lease:
            if not os.path.isfile(path):
                raise InputError(f"--lease: {path} is not a readable file")
        leases = LeasePaths(given=tuple(args.lease))
    known_arg = args.known
    if known_arg is None:
        directory = known_resolvers()
        return DiscoveryConfig(
            system, leases, directory, f"built-in list of public resolvers ({directory.as_of})"
        )
    if known_arg == "none":
        return DiscoveryConfig(system, leases, None, "none (--known none)")
    return DiscoveryConfig(system, leases, _known_file(known_arg), f"--known {known_arg}")


def _known_file(path: str) -> ResolverDirectory:
    try:
        if os.path.getsize(path) > MAX_KNOWN_FILE:
            raise InputError(f"--known: {path} is larger than {MAX_KNOWN_FILE >> 20} MiB")
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return parse_directory(data)
    except OSError as exc:
        raise InputError(f"--known: {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"--known: {path} is not UTF-8 text") from None
    except ValueError as exc:
        raise InputError(f"--known: {path}: {exc}") from None


def run_discovery(
    report: AuditReport, config: ProbeConfig, settings: DiscoveryConfig, quiet: bool
) -> None:
    """Discover and survey, adding the sections and findings to ``report``."""
    found = discover(config, settings)
    add_to_report(report, found, config)
    if not quiet:
        sys.stderr.write("".join(line + "\n" for line in summary_lines(found)))
