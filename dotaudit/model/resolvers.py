"""Known public encrypted-DNS resolvers, from the packaged ``data/resolvers.json``.

Each entry records the provider's documentation page it came from and the file records
the date it was compiled, so a reader can check a fact at its source.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True, slots=True)
class KnownResolver:
    provider: str
    source: str
    addresses: frozenset[str]
    dot_names: tuple[str, ...]
    doh_hosts: tuple[str, ...]
    doq_names: tuple[str, ...] = ()
    """Names its DNS over QUIC service answers to; empty where the source names none."""
    listed: tuple[str, ...] = ()
    """The addresses in the order the list gives them (the first is the main one)."""


@dataclass(frozen=True)
class ResolverDirectory:
    as_of: str
    resolvers: tuple[KnownResolver, ...]

    def by_address(self, address: str) -> KnownResolver | None:
        canonical = _canonical(address)
        for resolver in self.resolvers:
            if canonical in resolver.addresses:
                return resolver
        return None

    def by_dot_name(self, name: str | None) -> KnownResolver | None:
        return self._by_name(name, "dot")

    def by_doh_host(self, name: str | None) -> KnownResolver | None:
        return self._by_name(name, "doh")

    def _by_name(self, name: str | None, kind: str) -> KnownResolver | None:
        if not name:
            return None
        host = name.lower().rstrip(".")
        for resolver in self.resolvers:
            names = resolver.dot_names if kind == "dot" else resolver.doh_hosts
            for known in names:
                if host == known or (known.startswith(".") and host.endswith(known)):
                    return resolver
        return None


def _canonical(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


MAX_RESOLVERS = 1000
"""Entries a resolver list may hold; a longer file is refused, not truncated."""


def _strings(entry: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: {key!r} must be a list of strings")
    return tuple(value)


def parse_directory(data: object) -> ResolverDirectory:
    """A resolver list in the format of ``data/resolvers.json`` (``--known FILE`` gives
    one); raises ValueError naming the entry and field that are wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("resolvers"), list):
        raise ValueError('not a resolver list (an object with a "resolvers" array)')
    entries = data["resolvers"]
    if len(entries) > MAX_RESOLVERS:
        raise ValueError(f"more than {MAX_RESOLVERS} resolvers")
    resolvers: list[KnownResolver] = []
    for index, entry in enumerate(entries):
        where = f"resolvers[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("provider"), str):
            raise ValueError(f'{where}: an object with a "provider" string is needed')
        addresses = _strings(entry, "addresses", where)
        for address in addresses:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"{where}: {address!r} is not an IP address") from None
        resolvers.append(
            KnownResolver(
                provider=entry["provider"],
                source=str(entry.get("source", "")),
                addresses=frozenset(_canonical(a) for a in addresses),
                dot_names=_strings(entry, "dot_names", where),
                doh_hosts=_strings(entry, "doh_hosts", where),
                doq_names=_strings(entry, "doq_names", where),
                listed=tuple(dict.fromkeys(_canonical(a) for a in addresses)),
            )
        )
    return ResolverDirectory(as_of=str(data.get("as_of", "")), resolvers=tuple(resolvers))


@cache
def known_resolvers() -> ResolverDirectory:
    text = resources.files("dotaudit").joinpath("data/resolvers.json").read_text("utf-8")
    return parse_directory(json.loads(text))
