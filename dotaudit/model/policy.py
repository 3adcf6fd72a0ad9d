"""Audit policy (``--policy FILE``, TOML): what the network considers acceptable.

Example::

    internal_resolvers = ["10.0.0.53", "fd00::53"]   # may receive plaintext DNS
    fallback_window_s = 10
    treat_loopback_as_network = false

    [[approved_dot]]
    address = "9.9.9.9"
    name = "dns.quad9.net"
    pins = ["base64-sha256-of-spki="]

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


def _canonical_address(text: str, where: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise InputError(f"{where}: {text!r} is not an IP address") from None


def load_policy(path: str | Path) -> Policy:
    where = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{where}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{where}: not valid TOML: {exc}") from None
    return policy_from_dict(data, where)


def policy_from_dict(data: dict[str, Any], where: str = "policy") -> Policy:
    known = {
        "internal_resolvers",
        "approved_dot",
        "fallback_window_s",
        "severity",
        "treat_loopback_as_network",
    }
    unknown = set(data) - known
    if unknown:
        raise InputError(f"{where}: unknown keys: {', '.join(sorted(unknown))}")
    internal = frozenset(
        _canonical_address(str(a), where) for a in data.get("internal_resolvers", [])
    )
    approved = tuple(
        ApprovedResolver(
            address=_canonical_address(str(entry.get("address", "")), where),
            name=entry.get("name"),
            pins=tuple(str(p) for p in entry.get("pins", [])),
        )
        for entry in data.get("approved_dot", [])
    )
    overrides: dict[str, Severity] = {}
    for finding_id, level in (data.get("severity") or {}).items():
        if finding_id not in CATALOGUE:
            raise InputError(f"{where}: severity override for unknown finding {finding_id!r}")
        try:
            overrides[finding_id] = Severity.parse(str(level))
        except ValueError as exc:
            raise InputError(f"{where}: {exc}") from None
    window = data.get("fallback_window_s", 10.0)
    if not isinstance(window, int | float) or not 0 < window <= 3600:
        raise InputError(f"{where}: fallback_window_s must be a number of seconds in (0, 3600]")
    return Policy(
        internal_resolvers=internal,
        approved_dot=approved,
        fallback_window_s=float(window),
        severity_overrides=overrides,
        treat_loopback_as_network=bool(data.get("treat_loopback_as_network", False)),
        source=where,
    )
