"""The system's resolvers: ``nameserver`` lines of resolv.conf(5), and behind the
systemd-resolved stub (127.0.0.53, 127.0.0.54) the upstreams it forwards to, as
``/run/systemd/resolve/resolv.conf`` or ``resolvectl status`` name them.

Every address keeps the file (or command) it came from, so that a report can say where
each one was read. Nothing here guesses: a stub whose upstreams cannot be read stays a
stub, with the places looked at in its note.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from dataclasses import dataclass, field
from typing import Any

RESOLV_CONF = "/etc/resolv.conf"
RESOLVED_UPSTREAMS = "/run/systemd/resolve/resolv.conf"
"""systemd-resolved writes its upstream servers here in resolv.conf format."""
RESOLVED_STUBS = frozenset({"127.0.0.53", "127.0.0.54"})
"""systemd-resolved's stub listener and its proxy-only listener (resolved.conf(5))."""
MAX_FILE = 1024 * 1024
MAX_RESOLVERS = 64
RESOLVECTL_TIMEOUT = 3.0
_IP_TOKEN = re.compile(r"^[0-9A-Fa-f:.]+(%[\w.-]+)?(#[\w.-]+)?$")


@dataclass(frozen=True, slots=True)
class SystemResolver:
    """One resolver address the system is configured with."""

    address: str
    source: str
    """Where it was read: a file path with its line, or the command that printed it."""
    role: str = "system resolver"
    """"system resolver", "systemd-resolved stub" or "upstream of the systemd-resolved stub"."""
    note: str = ""

    @property
    def is_stub(self) -> bool:
        return self.role == "systemd-resolved stub"

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "source": self.source,
            "role": self.role,
            "note": self.note,
        }


@dataclass(frozen=True)
class SystemPaths:
    """Where the system's resolver configuration is read; tests point these elsewhere."""

    resolv_conf: str = RESOLV_CONF
    resolved_upstreams: str = RESOLVED_UPSTREAMS
    resolvectl: tuple[str, ...] | None = ("resolvectl", "status", "--no-pager")
    """The command that prints systemd-resolved's servers; None to never run it."""


@dataclass
class SystemResolvers:
    """What was read, and what could not be."""

    resolvers: list[SystemResolver] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def queryable(self) -> list[SystemResolver]:
        """The resolvers to ask directly: every one but a stub whose upstreams are known
        (RFC 9462 §6.1 asks forwarders not to pass resolver.arpa upstream, so asking the
        stub would only ask the stub)."""
        followed = any(r.role.startswith("upstream") for r in self.resolvers)
        return [r for r in self.resolvers if not (r.is_stub and followed)]


def _canonical(text: str) -> str | None:
    # resolv.conf allows a zone index (fe80::1%eth0); systemd writes ADDR#NAME or ADDR:PORT.
    token = text.split("#", 1)[0]
    base = token.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(base)
    except ValueError:
        return None
    if "%" in token and ip.version == 6:
        return f"{ip}%{token.split('%', 1)[1]}"
    return str(ip)


def _read(path: str) -> str:
    with open(path, "rb") as handle:
        data = handle.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise ValueError(f"larger than {MAX_FILE >> 10} KiB")
    return data.decode("utf-8", "replace")


def parse_nameservers(text: str, source: str, role: str) -> tuple[list[SystemResolver], list[str]]:
    """``nameserver`` lines of resolv.conf text, in order, without duplicates; returns the
    resolvers and what was skipped (lines that name no IP address)."""
    found: list[SystemResolver] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0] != "nameserver" or line.lstrip().startswith(("#", ";")):
            continue
        if len(words) < 2:
            skipped.append(f"{source}:{number}: a nameserver line without an address")
            continue
        address = _canonical(words[1]) if _IP_TOKEN.match(words[1]) else None
        if address is None:
            skipped.append(f"{source}:{number}: {words[1][:80]!r} is not an IP address")
            continue
        if address in seen or len(found) >= MAX_RESOLVERS:
            continue
        seen.add(address)
        found.append(SystemResolver(address, f"{source}:{number}", role))
    return found, skipped


def parse_resolvectl(text: str, source: str) -> list[SystemResolver]:
    """The servers ``resolvectl status`` lists under "DNS Servers:" (global and per link),
    continuation lines included; an ``ADDR#NAME`` entry keeps only the address."""
    found: list[SystemResolver] = []
    seen: set[str] = set()
    collecting = False
    for line in text.splitlines():
        words = line.split()
        only_addresses = bool(words) and all(_canonical(w) is not None for w in words)
        if only_addresses and collecting and line[:1].isspace():
            pass  # a continuation line of the list being read
        elif ":" in line:
            label, _, rest = line.partition(":")
            collecting = label.strip() == "DNS Servers"
            words = rest.split() if collecting else []
        else:
            collecting = False
            continue
        for word in words:
            address = _canonical(word)
            if address is not None and address not in seen and len(found) < MAX_RESOLVERS:
                seen.add(address)
                found.append(
                    SystemResolver(address, source, "upstream of the systemd-resolved stub")
                )
    return found


def _resolvectl(argv: tuple[str, ...]) -> tuple[str | None, str]:
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=RESOLVECTL_TIMEOUT, check=False
        )
    except FileNotFoundError:
        return None, f"{argv[0]} is not installed"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{argv[0]} failed: {exc}"
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        return None, f"{' '.join(argv)} failed: {why[0][:160] if why else done.returncode}"
    return done.stdout[:MAX_FILE], ""


def read_system_resolvers(paths: SystemPaths) -> SystemResolvers:
    """The resolvers of ``paths.resolv_conf``, with the systemd-resolved stub followed to
    its upstreams where they can be read."""
    out = SystemResolvers()
    try:
        text = _read(paths.resolv_conf)
    except (OSError, ValueError) as exc:
        out.problems.append(f"{paths.resolv_conf}: {getattr(exc, 'strerror', None) or exc}")
        return out
    resolvers, skipped = parse_nameservers(text, paths.resolv_conf, "system resolver")
    out.problems += skipped
    if not resolvers:
        out.problems.append(f"{paths.resolv_conf} names no resolver (no nameserver line)")
    stubs = [r for r in resolvers if r.address in RESOLVED_STUBS]
    if not stubs:
        out.resolvers = resolvers
        return out
    upstreams, looked = _resolved_upstreams(paths)
    for resolver in resolvers:
        if resolver.address not in RESOLVED_STUBS:
            out.resolvers.append(resolver)
            continue
        note = (
            "forwards to the upstreams below"
            if upstreams
            else "upstreams not known: " + "; ".join(looked)
        )
        out.resolvers.append(
            SystemResolver(resolver.address, resolver.source, "systemd-resolved stub", note)
        )
    known = {r.address for r in out.resolvers}
    out.resolvers += [u for u in upstreams if u.address not in known]
    return out


def _resolved_upstreams(paths: SystemPaths) -> tuple[list[SystemResolver], list[str]]:
    """systemd-resolved's upstreams, and where they were looked for without success."""
    looked: list[str] = []
    if not paths.resolved_upstreams and paths.resolvectl is None:
        return [], ["not followed: a given resolv.conf is read as it is, not this host's state"]
    try:
        text = _read(paths.resolved_upstreams)
    except (OSError, ValueError) as exc:
        looked.append(f"{paths.resolved_upstreams}: {getattr(exc, 'strerror', None) or exc}")
    else:
        found, _ = parse_nameservers(
            text, paths.resolved_upstreams, "upstream of the systemd-resolved stub"
        )
        found = [r for r in found if r.address not in RESOLVED_STUBS]
        if found:
            return found, looked
        looked.append(f"{paths.resolved_upstreams} names no upstream")
    if paths.resolvectl is None:
        return [], looked
    output, why = _resolvectl(paths.resolvectl)
    if output is None:
        looked.append(why)
        return [], looked
    found = [
        r
        for r in parse_resolvectl(output, " ".join(paths.resolvectl))
        if r.address not in RESOLVED_STUBS
    ]
    if not found:
        looked.append(f"{' '.join(paths.resolvectl)} lists no DNS server")
    return found, looked
