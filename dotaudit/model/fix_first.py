"""What to fix first: findings grouped by the action that fixes them, counted by machine.

An admin does not fix finding IDs; they turn on strict mode on some machines and block
port 53 on others. Each finding of severity low or above maps to an :class:`Action`;
findings that another finding of the same incident explains (the plaintext queries and
the failed DoT attempt of a fallback, linked by ``Finding.related``) are folded under it
rather than counted again. Groups are ordered by severity, then by how many machines
they cover, then by the order of :data:`ACTIONS`.

Every format shows the same groups: they are computed here, from the report, once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dotaudit.model.findings import Finding, Severity
from dotaudit.model.machines import Machine, MachineIndex, client_addresses


@dataclass(frozen=True)
class Action:
    """One thing an admin does, and the findings it fixes."""

    key: str
    ids: frozenset[str]
    one: str
    """What one machine does wrong, as a verb phrase: "falls back to plaintext ..."."""
    many: str
    """The same for several: "fall back to plaintext ..."."""
    fix: str
    """What to do, in plain words, with the settings to change."""
    explains: frozenset[str] = frozenset()
    """Related findings this action's findings account for (folded, not counted again),
    when they are not more severe than the finding that explains them."""


STRICT_MODE = (
    "turn on strict mode in their stub resolver so that they fail closed instead "
    "(stubby: `tls_authentication: GETDNS_AUTHENTICATION_REQUIRED`; systemd-resolved: "
    "`DNSOverTLS=yes`; Android: Private DNS with a provider host name), then find out why "
    "DoT failed on the path"
)

ACTIONS: tuple[Action, ...] = (
    Action(
        "fallback",
        frozenset({"DA-FALLBACK-001", "DA-LEAK-004"}),
        "falls back to plaintext DNS when DoT fails",
        "fall back to plaintext DNS when DoT fails",
        STRICT_MODE,
        frozenset({"DA-DOT-001", "DA-LEAK-001", "DA-LEAK-002", "DA-LEAK-004"}),
    ),
    Action(
        "split-leak",
        frozenset({"DA-LEAK-007"}),
        "sends some DNS in plaintext beside a working DoT session",
        "send some DNS in plaintext beside a working DoT session",
        "find the application or stub that uses its own resolver (browsers and VPN clients "
        "often do), and block outbound port 53 except to approved internal resolvers",
        frozenset({"DA-LEAK-001", "DA-LEAK-002"}),
    ),
    Action(
        "plaintext",
        frozenset({"DA-LEAK-001", "DA-LEAK-002"}),
        "sends DNS in plaintext",
        "send DNS in plaintext",
        "configure DNS over TLS or HTTPS in strict mode (stubby; systemd-resolved "
        "`DNS=…#name` with `DNSOverTLS=yes`; the system's encrypted DNS setting), and block "
        "outbound port 53 except to approved internal resolvers",
    ),
    Action(
        "cleartext-doh",
        frozenset({"DA-DOH-002"}),
        "sends DNS over HTTP/2 without TLS",
        "send DNS over HTTP/2 without TLS",
        "point the client at an https:// DoH endpoint",
    ),
    Action(
        "obsolete-tls",
        frozenset({"DA-DOT-002"}),
        "uses TLS 1.0 or 1.1 for DoT",
        "use TLS 1.0 or 1.1 for DoT",
        "enable TLS 1.3 on the resolver and the client; TLS 1.0 and 1.1 are deprecated",
    ),
    Action(
        "certificate",
        frozenset({"DA-DOT-005"}),
        "was shown a DoT certificate a strict client must refuse",
        "were shown a DoT certificate a strict client must refuse",
        "fix the resolver's certificate (expired, self-signed or for another name), or find "
        "the interception on the path",
    ),
    Action(
        "dot-unreachable",
        frozenset({"DA-DOT-001"}),
        "could not connect to DoT on port 853",
        "could not connect to DoT on port 853",
        "open TCP port 853 to the resolver on the path, or find the firewall or middlebox "
        "that drops or resets it",
    ),
    Action(
        "multicast-names",
        frozenset({"DA-LEAK-005"}),
        "asks for non-local names over mDNS or LLMNR",
        "ask for non-local names over mDNS or LLMNR",
        'turn LLMNR off (Windows group policy "Turn off multicast name resolution"; '
        "systemd-resolved `LLMNR=no`) and keep mDNS to .local names",
    ),
    Action(
        "client-subnet",
        frozenset({"DA-LEAK-006"}),
        "sends its network to resolvers (EDNS Client Subnet)",
        "send their network to resolvers (EDNS Client Subnet)",
        "stop the client or its forwarder adding EDNS Client Subnet (send source prefix 0, "
        "or no option at all)",
    ),
    Action(
        "padding",
        frozenset({"DA-PAD-001"}),
        "uses DoT without padding, so record sizes reveal the names",
        "use DoT without padding, so record sizes reveal the names",
        "turn on EDNS(0) padding: queries to blocks of 128 octets on the client (stubby "
        "`tls_query_padding_blocksize: 128`), responses to 468 on the resolver (Unbound "
        "`pad-responses: yes`)",
    ),
    Action(
        "unapproved-resolver",
        frozenset({"DA-POLICY-001"}),
        "uses a DoT resolver the policy does not approve",
        "use a DoT resolver the policy does not approve",
        "add the resolver to the policy's approved list with its SPKI pin, or block it",
    ),
    Action(
        "tls12",
        frozenset({"DA-DOT-003"}),
        "uses TLS 1.2 for DoT",
        "use TLS 1.2 for DoT",
        "prefer TLS 1.3 on the resolver and the client: TLS 1.2 shows the certificate and "
        "more of the handshake",
    ),
)
ACTION_OF: dict[str, Action] = {i: a for a in ACTIONS for i in a.ids}


def _generic(finding: Finding) -> Action:
    """An action for a finding ID the table does not know: its catalogue text."""
    title = finding.title.rstrip(".")
    return Action(
        "finding:" + finding.id,
        frozenset({finding.id}),
        f"has “{title}”",
        f"have “{title}”",
        finding.remediation or "see the finding",
    )


def plural(n: int, one: str, many: str | None = None) -> str:
    return one if n == 1 else (many or one + "s")


@dataclass
class FixItem:
    """One machine (or, for findings without a client, one server) in a group."""

    subject: str
    """The machine's label, or the server."""
    machine: Machine | None
    findings: list[Finding] = field(default_factory=list)
    folded: list[Finding] = field(default_factory=list)
    """Related findings the group's findings account for (the same incident)."""

    def details(self) -> list[str]:
        return [text for text in (_detail(f) for f in self.findings) if text]

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "machine": self.machine.to_dict() if self.machine is not None else None,
            "details": self.details(),
            "findings": [f.dedup_key for f in self.findings],
            "folded": [f.dedup_key for f in self.folded],
        }


@dataclass
class FixGroup:
    action: Action
    severity: Severity
    items: list[FixItem] = field(default_factory=list)

    @property
    def machines(self) -> int:
        return sum(1 for item in self.items if item.machine is not None)

    def sentence(self) -> str:
        machines = self.machines
        others = len(self.items) - machines
        parts = []
        if machines:
            verb = self.action.one if machines == 1 else self.action.many
            parts.append(f"{machines} {plural(machines, 'machine')} {verb}")
        if others:
            verb = self.action.one if others == 1 else self.action.many
            parts.append(f"{others} {plural(others, 'resolver')} {verb}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.key,
            "severity": self.severity.label,
            "sentence": self.sentence(),
            "fix": self.action.fix,
            "machines": self.machines,
            "findings": sum(len(i.findings) + len(i.folded) for i in self.items),
            "items": [item.to_dict() for item in self.items],
        }


@dataclass
class FixFirst:
    """The groups, and the machines of the report counted once each."""

    groups: list[FixGroup]
    machines: list[Machine]
    """Every client machine of the report."""
    worst: dict[int, Severity]
    """id(machine) -> the highest severity of its findings (machines with findings)."""

    @property
    def addresses(self) -> int:
        return sum(len(m.addresses) for m in self.machines)

    def to_fix(self) -> list[Machine]:
        """Machines with a finding of severity low or above."""
        return [m for m in self.machines if self.worst.get(id(m), Severity.INFO) > Severity.INFO]

    def by_severity(self) -> dict[str, int]:
        """Machines counted once each, at the highest severity of their findings;
        ``none`` for machines without findings."""
        counts = {s.label: 0 for s in sorted(Severity, reverse=True)}
        counts["none"] = 0
        for machine in self.machines:
            worst = self.worst.get(id(machine))
            counts[worst.label if worst is not None else "none"] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "machines": len(self.machines),
            "addresses": self.addresses,
            "machines_to_fix": len(self.to_fix()),
            "groups": [group.to_dict() for group in self.groups],
        }


def fix_first(findings: Iterable[Finding], sections: dict[str, list[dict[str, Any]]]) -> FixFirst:
    """The "Fix first" groups of a report's findings and sections."""
    ordered = sorted(
        findings, key=lambda f: (-f.severity, -f.confidence, f.id, f.first_ts or 0.0, f.dedup_key)
    )
    index = MachineIndex(sections.get("machines") or [])
    machines = index.machines_of(client_addresses(sections, ordered))
    worst: dict[int, Severity] = {}
    for finding in ordered:
        if finding.client:
            machine = index.machine_of(finding.client)
            worst[id(machine)] = max(worst.get(id(machine), finding.severity), finding.severity)
    by_key: dict[str, Finding] = {}
    for finding in ordered:
        by_key.setdefault(finding.dedup_key, finding)
    explained_by: dict[str, Finding] = {}
    for finding in ordered:
        action = ACTION_OF.get(finding.id)
        if action is None or finding.severity < Severity.LOW:
            continue
        for key in finding.related:
            other = by_key.get(key)
            if (
                other is not None
                and other.id in action.explains
                and other is not finding
                and other.severity <= finding.severity  # never hide a worse finding
                and other.dedup_key not in explained_by
                and finding.dedup_key not in explained_by
            ):
                explained_by[other.dedup_key] = finding
    groups: dict[str, FixGroup] = {}
    items: dict[tuple[str, int | str], FixItem] = {}
    item_of: dict[int, FixItem] = {}
    """id(finding) -> the item it was listed under."""
    for finding in ordered:
        if finding.severity < Severity.LOW or finding.dedup_key in explained_by:
            continue
        action = ACTION_OF.get(finding.id) or _generic(finding)
        group = groups.get(action.key)
        if group is None:
            group = groups[action.key] = FixGroup(action, finding.severity)
        group.severity = max(group.severity, finding.severity)
        if finding.client:
            machine = index.machine_of(finding.client)
            item_key: tuple[str, int | str] = (action.key, id(machine))
            item = items.get(item_key)
            if item is None:
                item = items[item_key] = FixItem(machine.label, machine)
                group.items.append(item)
        else:
            subject = finding.server or finding.id
            item_key = (action.key, subject)
            item = items.get(item_key)
            if item is None:
                item = items[item_key] = FixItem(subject, None)
                group.items.append(item)
        item.findings.append(finding)
        item_of[id(finding)] = item
    # Looked up by identity: searching every item's findings for each folded one was
    # quadratic, minutes for a report of 15,000 findings.
    for folded_key, cause in explained_by.items():
        listed_under = item_of.get(id(cause))
        if listed_under is not None:
            listed_under.folded.append(by_key[folded_key])
    priority = {action.key: n for n, action in enumerate(ACTIONS)}
    ordered_groups = sorted(
        groups.values(),
        key=lambda g: (-g.severity, -len(g.items), priority.get(g.action.key, len(ACTIONS))),
    )
    return FixFirst(ordered_groups, machines, worst)


# -- per-finding details ------------------------------------------------------------------


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _seconds(value: object) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.1f} s" if value >= 0.1 else f"{value * 1000:.0f} ms"
    return None


def _detail(finding: Finding) -> str:
    """A short line of what one finding saw, in plain words."""
    evidence = finding.evidence
    server = finding.server
    if finding.id == "DA-FALLBACK-001":
        failure = str(evidence.get("failure_text") or "DoT failed")
        after = _seconds(evidence.get("delay_s"))
        queries = _count(evidence.get("plaintext_queries"))
        text = f"DoT to {server}: {failure}"
        if queries is not None:
            text += f"; then {queries} plaintext {plural(queries, 'query', 'queries')}"
            servers = evidence.get("plaintext_servers")
            if isinstance(servers, list) and servers:
                text += " to " + ", ".join(str(s) for s in servers[:5])
            if after:
                text += f", {after} after the failed attempt"
        return text
    if finding.id in ("DA-LEAK-001", "DA-LEAK-002", "DA-LEAK-004"):
        queries = _count(evidence.get("queries"))
        transport = str(evidence.get("transport") or "").upper()
        over = f" over {transport} port 53" if transport else ""
        if queries is None:
            return f"plaintext DNS{over} to {server}"
        return f"{queries} {plural(queries, 'query', 'queries')}{over} to {server}"
    if finding.id == "DA-LEAK-005":
        queries = _count(evidence.get("queries"))
        services = evidence.get("services")
        names = {"mdns": "mDNS", "llmnr": "LLMNR"}
        kinds = (
            " and ".join(names.get(str(k), str(k)) for k in services)
            if isinstance(services, dict)
            else ""
        )
        text = f"{queries} {plural(queries, 'query', 'queries')}" if queries is not None else ""
        return f"{text} over {kinds or 'multicast name resolution'}".strip()
    if finding.id == "DA-LEAK-006":
        subnets = evidence.get("subnets")
        shown = ", ".join(str(s) for s in subnets[:3]) if isinstance(subnets, list) else ""
        return f"subnet {shown} sent to {server}" if shown else f"to {server}"
    if finding.id == "DA-LEAK-007":
        return f"plaintext to {server} while DoT worked"
    if server:
        return f"to {server}"
    return ""
