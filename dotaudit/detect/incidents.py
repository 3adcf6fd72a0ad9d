"""Findings about one incident point at each other (``Finding.related``).

One fallback shows up as three findings: the DoT attempt that failed (DA-DOT-001), the
fallback itself (DA-FALLBACK-001) and the plaintext queries that followed (DA-LEAK-001).
Linking them lets a report count the incident once and an admin go from one to the
others. Links are made within one capture, between findings of the same client:

- a fallback and the failed DoT connection to its DoT server;
- a fallback, and the plaintext findings (DA-LEAK-001, -002, -004) to its plaintext
  servers;
- plaintext in the clear with EDNS padding (DA-LEAK-004), a split leak (DA-LEAK-007) or
  EDNS Client Subnet (DA-LEAK-006), and the plaintext findings to the same server;
- the findings about the same DoT sessions (padding, TLS version, SNI, certificate,
  policy, established) between one client and one server.

Which linked finding explains which (what an admin fixes first) is the model's
(``model/fix_first.py``); this module only finds the links.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from dotaudit.model.findings import Finding

PLAINTEXT = frozenset({"DA-LEAK-001", "DA-LEAK-002"})
FALLBACK = "DA-FALLBACK-001"
DOT_FAILED = "DA-DOT-001"
ABOUT_PLAINTEXT = frozenset({"DA-LEAK-004", "DA-LEAK-006", "DA-LEAK-007"})
DOT_SESSION = frozenset(
    {
        "DA-PAD-001",
        "DA-PAD-002",
        "DA-DOT-002",
        "DA-DOT-003",
        "DA-DOT-004",
        "DA-DOT-005",
        "DA-DOT-006",
        "DA-POLICY-001",
    }
)


def _servers(finding: Finding) -> set[str]:
    """The servers a finding names (a split leak lists several, comma-separated)."""
    return {s.strip() for s in (finding.server or "").split(",") if s.strip()}


def _plaintext_servers(finding: Finding) -> set[str]:
    named = finding.evidence.get("plaintext_servers")
    if isinstance(named, list) and named:
        return {str(server) for server in named}
    return _servers(finding)


def link_related(findings: Iterable[Finding]) -> list[Finding]:
    """The findings with ``related`` filled in, in the same order."""
    found = list(findings)
    by_pair: dict[tuple[str, str], list[int]] = {}
    for index, finding in enumerate(found):
        if finding.client is None:
            continue
        for server in _servers(finding):
            by_pair.setdefault((finding.client, server), []).append(index)
    links: dict[int, set[int]] = {}

    def link(index: int, servers: set[str], wanted: frozenset[str] | set[str]) -> None:
        client = found[index].client
        assert client is not None
        for server in servers:
            for other in by_pair.get((client, server), ()):
                if other != index and found[other].id in wanted:
                    links.setdefault(index, set()).add(other)
                    links.setdefault(other, set()).add(index)

    for index, finding in enumerate(found):
        if finding.client is None:
            continue
        if finding.id == FALLBACK:
            link(index, _servers(finding), {DOT_FAILED})
            link(index, _plaintext_servers(finding), PLAINTEXT | {"DA-LEAK-004"})
        elif finding.id in ABOUT_PLAINTEXT:
            link(index, _servers(finding), PLAINTEXT)
        elif finding.id in DOT_SESSION:
            link(index, _servers(finding), DOT_SESSION)
    if not links:
        return found
    return [
        replace(finding, related=tuple(sorted({found[o].dedup_key for o in links[index]})))
        if index in links
        else finding
        for index, finding in enumerate(found)
    ]
