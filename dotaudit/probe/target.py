"""Parse a TARGET argument: ``IP``, ``IP:PORT``, ``[IPv6]:PORT``, ``NAME@IP[:PORT]``
or a hostname (optionally ``HOST:PORT``), which the runner resolves and reports.

Parsing is pure and strict: the text comes from users and target files, so anything
that is not exactly one of these forms raises :class:`TargetError`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

DOT_PORT = 853
MAX_TARGET_LENGTH = 512
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


class TargetError(ValueError):
    """A TARGET that is not one of the accepted forms."""


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    target: str
    """The text as given, for the report."""
    address: str | None
    """None until a hostname target is resolved."""
    port: int = DOT_PORT
    name: str | None = None
    """Authentication domain name (RFC 8310 §6.1) given with the target itself."""
    hostname: str | None = None
    """Set for hostname targets: what to resolve (and the default name)."""
    resolved: tuple[str, ...] = ()

    def with_address(self, address: str, resolved: tuple[str, ...]) -> ProbeTarget:
        return replace(self, address=address, resolved=resolved)


def valid_hostname(text: str) -> bool:
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    if all(label.isdigit() for label in labels):
        return False  # a dotted number is a malformed address, not a name
    return all(_LABEL.match(label) for label in labels)


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise TargetError(f"{whole!r}: bad port {text!r} (1-65535)")
    return int(text)


def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _address_part(text: str, whole: str) -> tuple[str | None, str | None, int]:
    """(address, hostname, port) from ``IP``, ``IP:PORT``, ``[IPv6]:PORT`` or host[:port]."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise TargetError(f"{whole!r}: missing ']'")
        inner, rest = text[1:close], text[close + 1 :]
        addr = _ip(inner.split("%", 1)[0])
        if addr is None or ":" not in addr:
            raise TargetError(f"{whole!r}: {inner!r} is not an IPv6 address")
        if not rest:
            return addr, None, DOT_PORT
        if not rest.startswith(":"):
            raise TargetError(f"{whole!r}: expected ':PORT' after ']'")
        return addr, None, _port(rest[1:], whole)
    addr = _ip(text)
    if addr is not None:
        return addr, None, DOT_PORT
    if text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text, whole)
    elif ":" in text:
        raise TargetError(f"{whole!r}: write IPv6 with a port as [ADDRESS]:PORT")
    else:
        host, port = text, DOT_PORT
    addr = _ip(host)
    if addr is not None:
        if ":" in addr:
            raise TargetError(f"{whole!r}: write IPv6 with a port as [ADDRESS]:PORT")
        return addr, None, port
    if not valid_hostname(host):
        raise TargetError(f"{whole!r}: not an IP address or a host name")
    return None, host.rstrip(".").lower(), port


def parse_target(text: str) -> ProbeTarget:
    """One TARGET; raises TargetError with a message naming what is wrong."""
    whole = text
    text = text.strip()
    if not text:
        raise TargetError(
            f"{whole!r}: empty; give IP, IP:PORT, [IPv6]:PORT, NAME@IP or a host name"
        )
    if len(text) > MAX_TARGET_LENGTH or not text.isprintable() or " " in text:
        raise TargetError(f"{whole[:80]!r}: not a target")
    name: str | None = None
    if "@" in text:
        name, _, text = text.rpartition("@")
        if not valid_hostname(name):
            raise TargetError(f"{whole!r}: {name!r} is not a valid authentication name")
        name = name.rstrip(".").lower()
        addr, host, port = _address_part(text, whole)
        if addr is None:
            raise TargetError(f"{whole!r}: NAME@IP needs an IP address after '@'")
        return ProbeTarget(whole, addr, port, name)
    addr, host, port = _address_part(text, whole)
    if host is not None:
        return ProbeTarget(whole, None, port, hostname=host)
    return ProbeTarget(whole, addr, port)
