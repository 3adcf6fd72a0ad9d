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


@dataclass(frozen=True, slots=True)
class KnownResolver:
    provider: str
    source: str
    addresses: frozenset[str]
    dot_names: tuple[str, ...]
    doh_hosts: tuple[str, ...]


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


@cache
def known_resolvers() -> ResolverDirectory:
    text = resources.files("dotaudit").joinpath("data/resolvers.json").read_text("utf-8")
    data = json.loads(text)
    return ResolverDirectory(
        as_of=str(data["as_of"]),
        resolvers=tuple(
            KnownResolver(
                provider=entry["provider"],
                source=entry["source"],
                addresses=frozenset(_canonical(a) for a in entry["addresses"]),
                dot_names=tuple(entry["dot_names"]),
                doh_hosts=tuple(entry["doh_hosts"]),
            )
            for entry in data["resolvers"]
        ),
    )
