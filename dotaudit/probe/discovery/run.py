"""Discovery and survey in order, as sections of one report.

1. the system resolvers (resolv.conf, the systemd-resolved stub followed) and what each
   tells about itself on port 53;
2. DDR for each of them, every designation probed and judged;
3. DNR from the lease state the system keeps;
4. the survey of the known resolvers plus every designated one;
5. the network verdict.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dotaudit.model.findings import Finding
from dotaudit.model.report import AuditReport
from dotaudit.model.resolvers import KnownResolver, ResolverDirectory
from dotaudit.probe.base import ProbeConfig
from dotaudit.probe.discovery import identity as ident
from dotaudit.probe.discovery.ddr import DdrResult, Endpoint, ask_identity, discover_designations
from dotaudit.probe.discovery.dnr import DnrSource, LeasePaths, read_dnr
from dotaudit.probe.discovery.network_verdict import NetworkVerdict, network_verdict
from dotaudit.probe.discovery.resolv_conf import (
    SystemPaths,
    SystemResolvers,
    read_system_resolvers,
)
from dotaudit.probe.discovery.survey import SurveyResult, SurveyTarget, run_survey
from dotaudit.probe.transport import Transport

MAX_SURVEY_TARGETS = 256
"""Resolvers surveyed at most; more are counted in the report, not surveyed."""
MAX_DDR_WORKERS = 8


@dataclass(frozen=True)
class DiscoveryConfig:
    """What ``--discover`` reads and surveys (the network settings are ProbeConfig's)."""

    system: SystemPaths = field(default_factory=SystemPaths)
    leases: LeasePaths = field(default_factory=LeasePaths)
    known: ResolverDirectory | None = None
    """The resolvers to survey besides the designated ones; None skips them."""
    known_source: str = "none"
    """Where ``known`` came from, for the report ("built-in list", a file, "none")."""
    survey: bool = True
    concurrency: int = 64


@dataclass
class Discovery:
    """Everything discovery and the survey found."""

    system: SystemResolvers
    identities: dict[str, ident.Identity] = field(default_factory=dict)
    ddr: list[DdrResult] = field(default_factory=list)
    dnr: list[DnrSource] = field(default_factory=list)
    survey: list[SurveyResult] = field(default_factory=list)
    verdict: NetworkVerdict | None = None
    known_source: str = "none"
    not_surveyed: int = 0
    elapsed: dict[str, float] = field(default_factory=dict)

    @property
    def findings(self) -> list[Finding]:
        found = [f for result in self.ddr for f in result.findings]
        return found + (self.verdict.findings if self.verdict else [])

    def endpoints(self) -> list[Endpoint]:
        return [e for result in self.ddr for e in result.endpoints]


def _first_name(names: tuple[str, ...]) -> str | None:
    # A name beginning with "." is a suffix pattern (".dns.nextdns.io"), not a host.
    return next((n for n in names if n and not n.startswith(".")), None)


def known_targets(directory: ResolverDirectory, source: str) -> list[SurveyTarget]:
    """One target per known resolver: its first IPv4 address (or first address), with its
    first DoT, DoH and DoQ names. DoH is tried at that address only when its host is also
    a DoT name of the resolver: a provider whose DoH host has addresses of its own (the
    list does not give them) would otherwise look blocked."""
    out: list[SurveyTarget] = []
    for resolver in directory.resolvers:
        address = _main_address(resolver)
        if address is None:
            continue
        doh = _first_name(resolver.doh_hosts)
        out.append(
            SurveyTarget(
                label=resolver.provider,
                address=address,
                source=source,
                group="public",
                dot_name=_first_name(resolver.dot_names),
                doh_host=doh if doh in resolver.dot_names else None,
                doq_name=_first_name(resolver.doq_names),
            )
        )
    return out


def _main_address(resolver: KnownResolver) -> str | None:
    listed = resolver.listed or tuple(sorted(resolver.addresses))
    v4 = [a for a in listed if ":" not in a]
    return v4[0] if v4 else (listed[0] if listed else None)


def designated_targets(
    ddr: list[DdrResult], dnr: list[DnrSource], system: set[str]
) -> list[SurveyTarget]:
    """One target per address a designation or a DNR option names, with the names it
    was designated under for each protocol."""
    merged: dict[str, dict[str, Any]] = {}

    def add(
        address: str, protocol: str, name: str, port: int, path: str | None, source: str
    ) -> None:
        row = merged.setdefault(address, {"sources": [], "label": name})
        if source not in row["sources"]:
            row["sources"].append(source)
        row.setdefault(protocol, (name, port, path))

    for result in ddr:
        for endpoint in result.endpoints:
            if endpoint.address is None:
                continue
            source = f"DDR: designated by {result.resolver} ({endpoint.status})"
            path = endpoint.dohpath
            add(
                endpoint.address,
                endpoint.protocol,
                endpoint.target.rstrip("."),
                endpoint.port,
                path,
                source,
            )
    for place in dnr:
        for instance in place.instances:
            for address in instance.addresses[:4]:
                for protocol in instance.protocols():
                    add(
                        address,
                        protocol,
                        instance.adn.rstrip("."),
                        instance.port(protocol),
                        instance.params.get("dohpath"),
                        f"DNR: {place.kind} {place.where}",
                    )
    from dotaudit.probe.discovery.svcb import dohpath_post_path

    out: list[SurveyTarget] = []
    for address, row in merged.items():
        dot, doh, doq = row.get("dot"), row.get("doh"), row.get("doq")
        out.append(
            SurveyTarget(
                label=str(row["label"]),
                address=address,
                source="; ".join(row["sources"]),
                group="designated",
                dot_name=dot[0] if dot else None,
                dot_port=dot[1] if dot else 853,
                doh_host=doh[0] if doh else None,
                doh_port=doh[1] if doh else 443,
                doh_path=dohpath_post_path(doh[2] or "/dns-query") if doh else "/dns-query",
                doq_name=doq[0] if doq else None,
                doq_port=doq[1] if doq else 853,
                system=address in system,
            )
        )
    return out


def discover(config: ProbeConfig, settings: DiscoveryConfig) -> Discovery:
    """Run discovery, then (unless ``settings.survey`` is off) the survey."""
    clock = time.monotonic()
    found = Discovery(read_system_resolvers(settings.system), known_source=settings.known_source)
    queryable = [r.address for r in found.system.queryable()]
    net = Transport()

    def one(address: str) -> tuple[DdrResult, ident.Identity | None]:
        result = discover_designations(Transport(), address, config)
        if result.status == "unreachable":
            return result, None  # it did not answer port 53 once: no second wait for it
        return result, ask_identity(net, address, config)

    if queryable:
        with ThreadPoolExecutor(max_workers=min(MAX_DDR_WORKERS, len(queryable))) as pool:
            for address, (result, identity) in zip(
                queryable, pool.map(one, queryable), strict=True
            ):
                found.ddr.append(result)
                if identity is not None:
                    found.identities[address] = identity
                    result.identity = identity
    found.elapsed["ddr_s"] = time.monotonic() - clock
    found.dnr = read_dnr(settings.leases)
    if not settings.survey:
        return found
    clock = time.monotonic()
    targets = designated_targets(found.ddr, found.dnr, set(queryable))
    if settings.known is not None:
        targets = known_targets(settings.known, settings.known_source) + targets
    found.not_surveyed = max(0, len(targets) - MAX_SURVEY_TARGETS)
    found.survey = run_survey(
        targets[:MAX_SURVEY_TARGETS], config, found.identities, settings.concurrency
    )
    found.elapsed["survey_s"] = time.monotonic() - clock
    found.verdict = network_verdict(found.survey)
    return found


def sections(found: Discovery, config: ProbeConfig) -> dict[str, list[dict[str, Any]]]:
    """The report sections: ``system_resolvers``, ``designations``, ``dnr``, ``survey``
    and ``network`` (one row: the verdict, its clauses and the survey's budget)."""
    by_resolver = {r.resolver: r for r in found.ddr}
    system_rows = []
    for resolver in found.system.resolvers:
        row = resolver.to_dict()
        identity = found.identities.get(resolver.address)
        row["identity"] = identity.told() if identity is not None else None
        result = by_resolver.get(resolver.address)
        if result is not None:
            row["ddr"] = {
                "status": result.status,
                "detail": result.detail,
                "rcode": result.rcode,
                "over": result.over,
                "records": result.records,
            }
        else:
            row["ddr"] = {
                "status": "not asked",
                "detail": "a stub: its upstreams were asked" if resolver.is_stub else "not asked",
                "records": [],
            }
        system_rows.append(row)
    designations = [e.to_dict() | {"found_by": "DDR"} for e in found.endpoints()]
    for place in found.dnr:
        for instance in place.instances:
            designations.append(
                {
                    "found_by": "DNR",
                    "resolver": place.where,
                    "priority": instance.priority,
                    "target": instance.adn,
                    "protocol": ", ".join(instance.protocols()) or None,
                    "addresses": instance.addresses,
                    "status": "named by the network",
                    "verified": False,
                    "reasons": [f"{place.kind}: {place.where}"],
                    "params": instance.params,
                }
            )
    out: dict[str, list[dict[str, Any]]] = {
        "system_resolvers": system_rows,
        "designations": designations,
        "dnr": [p.to_dict() for p in found.dnr],
    }
    if found.verdict is not None:
        opened = [r.to_dict()["connections"]["opened"] for r in found.survey]
        out["survey"] = [r.to_dict() for r in found.survey]
        out["network"] = [
            {
                "verdict": found.verdict.sentence,
                "clauses": [c.to_dict() for c in found.verdict.clauses],
                "known_source": found.known_source,
                "system_problems": found.system.problems,
                "budget": {
                    "resolvers": len(found.survey),
                    "not_surveyed": found.not_surveyed,
                    "timeout_s": config.timeout,
                    "survey_s": round(found.elapsed.get("survey_s", 0.0), 3),
                    "ddr_s": round(found.elapsed.get("ddr_s", 0.0), 3),
                    "max_connections_per_resolver": max(opened, default=0),
                },
            }
        ]
    else:
        out["network"] = [
            {
                "verdict": None,
                "clauses": [],
                "known_source": found.known_source,
                "system_problems": found.system.problems,
                "budget": {"ddr_s": round(found.elapsed.get("ddr_s", 0.0), 3)},
            }
        ]
    return out


def add_to_report(report: AuditReport, found: Discovery, config: ProbeConfig) -> None:
    """The discovery sections and findings, in ``report``."""
    report.sections.update(sections(found, config))
    report.findings.extend(found.findings)


def summary_lines(found: Discovery) -> list[str]:
    """A few terminal lines: the resolvers, the designations, the verdict."""
    lines = [
        f"system resolver {_printable(r.address)} ({r.role}, {_printable(r.source)})"
        for r in found.system.resolvers
    ]
    lines += [f"  {_printable(p)}" for p in found.system.problems]
    for result in found.ddr:
        if result.status != "designations":
            lines.append(f"DDR {result.resolver}: {result.status} {_printable(result.detail)}")
        for endpoint in result.endpoints:
            where = f"{endpoint.address}:{endpoint.port}" if endpoint.address else "no address"
            lines.append(
                f"DDR {result.resolver}: {_printable(endpoint.label)} at {where}: {endpoint.status}"
            )
    for place in found.dnr:
        if place.status == "found" and place.instances:
            lines.append(
                f"DNR {place.kind} {_printable(place.where)}: {len(place.instances)} found"
            )
        elif place.status == "found":  # an entry kept as the network manager states it
            lines.append(f"DNR {place.kind} {_printable(place.where)}: {_printable(place.detail)}")
    if found.verdict is not None:
        lines.append(_printable(found.verdict.sentence))
    return lines


def _printable(text: object) -> str:
    # Resolver answers and file contents reach the terminal; escape control characters.
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in str(text))
