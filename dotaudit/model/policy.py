"""Audit policy (``--policy FILE``, TOML): what the network considers acceptable.

Example::

    internal_resolvers = ["10.0.0.53", "fd00::53"]   # may receive plaintext DNS
    fallback_window_s = 10
    treat_loopback_as_network = false

    [[approved_dot]]
    address = "9.9.9.9"
    name = "dns.quad9.net"
    pins = ["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="]  # base64 SHA-256 of the SPKI

    [severity]
    "DA-DOT-003" = "info"
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dotaudit.errors import InputError
from dotaudit.model.findings import CATALOGUE, Finding, Severity
from dotaudit.model.validate import (
    Boolean,
    HostName,
    Invalid,
    IPAddress,
    ListOf,
    MapOf,
    Number,
    OneOf,
    SpkiPin,
    Table,
)

MAX_FALLBACK_WINDOW_S = 3600.0
"""A plaintext query this long after a failed DoT attempt is no longer its fallback."""


@dataclass(frozen=True)
class ApprovedResolver:
    address: str
    name: str | None = None
    pins: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    internal_resolvers: frozenset[str] = frozenset()
    approved_dot: tuple[ApprovedResolver, ...] = ()
    fallback_window_s: float = 10.0
    severity_overrides: dict[str, Severity] = field(default_factory=dict)
    treat_loopback_as_network: bool = False
    source: str | None = None

    def is_internal(self, address: str) -> bool:
        return address in self.internal_resolvers

    def is_local_stub(self, address: str) -> bool:
        if self.treat_loopback_as_network:
            return False
        try:
            return ipaddress.ip_address(address).is_loopback
        except ValueError:
            return False

    def approved_addresses(self) -> frozenset[str]:
        return frozenset(r.address for r in self.approved_dot)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "internal_resolvers": sorted(self.internal_resolvers),
            "approved_dot": [
                {"address": r.address, "name": r.name, "pins": list(r.pins)}
                for r in self.approved_dot
            ],
            "fallback_window_s": self.fallback_window_s,
            "severity_overrides": {k: v.label for k, v in sorted(self.severity_overrides.items())},
            "treat_loopback_as_network": self.treat_loopback_as_network,
        }


def apply_severity_overrides(findings: Iterable[Finding], policy: Policy) -> list[Finding]:
    """The findings with the policy's ``[severity]`` overrides applied.

    Detectors report every finding at its natural severity; the analysis applies the
    overrides here, once, after the last detector finished, so that an override means
    the same for every finding ID and no detector has to remember it.
    """
    overrides = policy.severity_overrides
    if not overrides:
        return list(findings)
    return [
        replace(finding, severity=overrides[finding.id]) if finding.id in overrides else finding
        for finding in findings
    ]


def _is_finding_id(key: str) -> bool:
    return key in CATALOGUE


_APPROVED_DOT = Table(
    {
        "address": IPAddress(),
        "name": HostName(),
        "pins": ListOf(SpkiPin(), "a list of base64 SHA-256 SPKI pins"),
    },
    required=frozenset({"address"}),
    expected="a table of address, name and pins",
)

SCHEMA = Table(
    {
        "internal_resolvers": ListOf(IPAddress(), "a list of IP addresses"),
        "approved_dot": ListOf(_APPROVED_DOT, "a list of [[approved_dot]] tables"),
        "fallback_window_s": Number(0, MAX_FALLBACK_WINDOW_S, "seconds"),
        "treat_loopback_as_network": Boolean(),
        "severity": MapOf(
            _is_finding_id,
            "a finding ID from docs/findings.md",
            OneOf(tuple(s.label for s in Severity), "a severity:"),
        ),
    }
)
"""What a policy file may say; every key is optional (see :class:`Policy` for defaults)."""


def load_policy(path: str | Path) -> Policy:
    """The policy in a TOML file; :class:`InputError` ``FILE: key: reason`` if it is wrong."""
    where = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{where}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{where}: not valid TOML: {exc}") from None
    return policy_from_dict(data, where)


def policy_from_dict(data: dict[str, Any], where: str = "policy") -> Policy:
    try:
        values = SCHEMA(data, "")
    except Invalid as exc:
        raise InputError(f"{where}: {exc}") from None
    approved = tuple(
        ApprovedResolver(entry["address"], entry.get("name"), tuple(entry.get("pins", ())))
        for entry in values.get("approved_dot", ())
    )
    seen: dict[str, int] = {}
    for index, resolver in enumerate(approved):
        if resolver.address in seen:
            raise InputError(
                f"{where}: approved_dot[{index}].address: {resolver.address} is already "
                f"approved by approved_dot[{seen[resolver.address]}]"
            )
        seen[resolver.address] = index
    defaults = Policy()
    return Policy(
        internal_resolvers=frozenset(values.get("internal_resolvers", ())),
        approved_dot=approved,
        fallback_window_s=values.get("fallback_window_s", defaults.fallback_window_s),
        severity_overrides={
            key: Severity.parse(label) for key, label in values.get("severity", {}).items()
        },
        treat_loopback_as_network=values.get(
            "treat_loopback_as_network", defaults.treat_loopback_as_network
        ),
        source=where,
    )
