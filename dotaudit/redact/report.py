"""Redacting a whole ``AuditReport`` for handing over.

Two passes over the report's JSON form, so that no field is forgotten however detectors
name it:

1. Collect: client addresses, resolver addresses (from the fields that hold resolvers:
   plaintext and DoT servers, fallback targets, DoH/DoQ servers, probe targets, the
   policy's internal and approved resolvers, the servers of DNS findings), and every
   name from the fields that hold names (qnames, SNI, outer SNI, DoH authorities, and,
   when resolvers are hidden too, resolver names and certificate SANs).
2. Rewrite every string and every object key: fields known to hold names are masked as
   names; everything else goes through :meth:`Redactor.text`, which rewrites addresses in
   any spelling and every token that contains a collected name. Titles, notes, dedup
   keys, certificate subjects, anomaly details and input paths are covered that way.

Lists of names that masking made equal are reduced to one entry each; object keys that
masking made equal are merged (counts added).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from dotaudit.model.report import AuditReport
from dotaudit.redact.cryptopan import IPAddress
from dotaudit.redact.redactor import RedactionConfig, Redactor, parse_address

REDACTION_SCHEME = "dotaudit.redaction/1"

CLIENT_NAME_KEYS = frozenset({"qname", "qnames", "sni", "outer_sni", "names", "snis"})
"""Fields that hold names a client asked for or sent: masked at the configured level."""
AUTHORITY_KEYS = frozenset({"authority", "authorities"})
"""``host[:port]`` as a DoH client sent it."""
RESOLVER_NAME_KEYS = frozenset({"san"})
"""Certificate names of resolvers: masked only when resolvers are hidden too. Other
resolver names (probe targets and their ADNs, approved resolvers) are learned and masked
by the free-text pass wherever they appear."""
ENVELOPE_KEYS = frozenset({"schema", "tool", "kind", "generated_at", "summary"})
"""Top-level fields that hold no audit data (the summary is recomputed)."""

RESOLVER_SECTION_FIELDS = {
    "plaintext_dns": ("server",),
    "dot_sessions": ("server",),
    "fallback_events": ("dot_server", "plaintext_server"),
    "doh_doq": ("server",),
    "targets": ("address", "resolved"),
    "system_resolvers": ("address",),
    "designations": ("address", "addresses", "resolver"),
    "survey": ("address",),
}
RESOLVER_EVIDENCE_FIELDS = ("servers", "plaintext_servers")
RESOLVER_FINDING_PREFIXES = (
    "DA-LEAK-001",
    "DA-LEAK-002",
    "DA-LEAK-003",
    "DA-LEAK-004",
    "DA-LEAK-006",
    "DA-LEAK-007",
    "DA-DOT-",
    "DA-FALLBACK-",
    "DA-PAD-",
    "DA-DOH-",
    "DA-DOQ-",
    "DA-SNI-",
    "DA-PROBE-",
    "DA-POLICY-",
    "DA-DDR-",
)
"""Findings whose ``server`` is a resolver. Others (ECH: a web server) are pseudonymised."""

REWRITTEN = [
    "client addresses (every field and every free text: titles, notes, dedup keys, paths)",
    "addresses of other servers (web servers in the SNI inventory, ICMP senders)",
    "MAC addresses",
    "query names, SNI, outer SNI and DoH authorities (at the names level)",
    "names and addresses inside reverse-DNS names",
]
KEPT = [
    "timestamps and durations",
    "ports, protocols and transports",
    "packet, record and message sizes and counts",
    "TLS versions, ciphers, ALPN, JA3/JA4 fingerprints",
    "capture file paths and SHA-256 hashes (addresses and names inside paths are rewritten)",
    "resolver provider names from the known-resolver list",
    "certificate issuers and SPKI hashes",
]


class RedactionError(ValueError):
    """A report that cannot be redacted as asked (already redacted with another key)."""


def redaction_matches(block: dict[str, Any] | None, config: RedactionConfig) -> bool:
    if not isinstance(block, dict):
        return False
    addresses = _mapping(block.get("addresses"))
    names = _mapping(block.get("names"))
    return (
        block.get("key_fingerprint") == config.key.fingerprint
        and names.get("level") == config.names.value
        and addresses.get("resolvers") == ("pseudonymised" if config.resolvers else "kept")
    )


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _addresses(value: object) -> Iterator[IPAddress]:
    for text in _strings(value):
        address = parse_address(text)
        if address is not None:
            yield address


def _rows(value: object) -> list[dict[str, Any]]:
    return [row for row in value if isinstance(row, dict)] if isinstance(value, list) else []


def _walk_keys(value: object, keys: frozenset[str]) -> Iterator[object]:
    """Values of every field named in ``keys``, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in keys:
                yield item
            yield from _walk_keys(item, keys)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_keys(item, keys)


def _authority_host(text: str) -> str:
    if text.startswith("["):
        return text
    host, sep, port = text.rpartition(":")
    return host if sep and port.isdigit() and ":" not in host else text


def collect(
    data: dict[str, Any], config: RedactionConfig
) -> tuple[set[IPAddress], set[IPAddress], set[str]]:
    """Clients, resolvers and names of a report in JSON form."""
    clients: set[IPAddress] = set()
    resolvers: set[IPAddress] = set()
    names: set[str] = set()
    for item in _walk_keys(data, frozenset({"client", "clients"})):
        clients.update(_addresses(item))
    for section, fields in RESOLVER_SECTION_FIELDS.items():
        for row in _rows(data.get(section)):
            for name in fields:
                resolvers.update(_addresses(row.get(name)))
    for row in _rows(data.get("sni_inventory")):
        if row.get("known_resolver") is True:
            resolvers.update(_addresses(row.get("servers")))
    for finding in _rows(data.get("findings")):
        if str(finding.get("id", "")).startswith(RESOLVER_FINDING_PREFIXES):
            resolvers.update(_addresses(finding.get("server")))
            evidence = finding.get("evidence")
            if isinstance(evidence, dict):
                for name in RESOLVER_EVIDENCE_FIELDS:
                    resolvers.update(_addresses(evidence.get(name)))
    policy = data.get("policy")
    if isinstance(policy, dict):
        resolvers.update(_addresses(policy.get("internal_resolvers")))
        for entry in _rows(policy.get("approved_dot")):
            resolvers.update(_addresses(entry.get("address")))
    for item in _walk_keys(data, CLIENT_NAME_KEYS):
        names.update(_strings(item))
    for item in _walk_keys(data, AUTHORITY_KEYS):
        names.update(_authority_host(text) for text in _strings(item))
    if config.resolvers:
        for item in _walk_keys(data, RESOLVER_NAME_KEYS):
            names.update(_strings(item))
        entries = _rows(data.get("targets"))
        if isinstance(policy, dict):
            entries += _rows(policy.get("approved_dot"))
        for finding in _rows(data.get("findings")):
            if str(finding.get("id", "")).startswith("DA-PROBE-"):
                entries += _rows([finding.get("evidence")])
        for row in entries:
            names.update(_strings(row.get("name")))
            target = row.get("target")
            if isinstance(target, str):
                host = target.partition("@")[0] if "@" in target else target
                if parse_address(host) is None:
                    names.add(_authority_host(host))
    return clients, resolvers, names


class _Rewriter:
    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.name_keys = CLIENT_NAME_KEYS | (
            RESOLVER_NAME_KEYS if redactor.config.resolvers else frozenset()
        )

    def value(self, value: object, key: str | None) -> object:
        if isinstance(value, str):
            return self.string(value, key)
        if isinstance(value, list):
            items = [self.value(item, key) for item in value]
            if key in self.name_keys or key in AUTHORITY_KEYS:
                return _unique(items)
            return items
        if isinstance(value, dict):
            return self.mapping(value)
        return value

    def string(self, text: str, key: str | None) -> str:
        if key in self.name_keys:
            return self.redactor.name(text)
        if key in AUTHORITY_KEYS:
            host = _authority_host(text)
            return self.redactor.name(host) + text[len(host) :]
        return self.redactor.text(text)

    def mapping(self, mapping: dict[Any, Any]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key, item in mapping.items():
            new_key = self.redactor.text(key) if isinstance(key, str) else key
            new_item = self.value(item, key if isinstance(key, str) else None)
            if new_key in out:
                out[new_key] = _merged(out[new_key], new_item)
            else:
                out[new_key] = new_item
        return out


def _unique(items: list[object]) -> list[object]:
    seen: list[object] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _merged(first: object, second: object) -> object:
    if (
        isinstance(first, int)
        and isinstance(second, int)
        and not isinstance(first, bool)
        and not isinstance(second, bool)
    ):
        return first + second
    if isinstance(first, list) and isinstance(second, list):
        return first + second
    return first


def redactor_for(report: AuditReport, config: RedactionConfig) -> Redactor:
    """The redactor of one report: its clients, kept resolvers and names learned."""
    clients, resolvers, names = collect(report.to_dict(), config)
    redactor = Redactor(config, resolvers=resolvers, clients=clients)
    redactor.learn_names(sorted(names))
    return redactor


def redact_report(
    report: AuditReport, config: RedactionConfig, redactor: Redactor | None = None
) -> AuditReport:
    """A redacted copy of ``report`` carrying a ``redaction`` block; the input is unchanged.

    A report already redacted with the same key and levels is returned as it is; one
    redacted otherwise raises :class:`RedactionError` (pseudonyms of pseudonyms would
    match nothing). Pass the ``redactor`` from :func:`redactor_for` to rewrite evidence
    pcaps with the same decisions afterwards.
    """
    if report.redaction is not None:
        if redaction_matches(report.redaction, config):
            return report
        fingerprint = report.redaction.get("key_fingerprint", "unknown")
        raise RedactionError(
            f"the report is already redacted (key fingerprint {fingerprint}, other key or "
            "levels); redact the unredacted report instead"
        )
    if redactor is None:
        redactor = redactor_for(report, config)
    data = report.to_dict()
    envelope = {key: data.pop(key) for key in ENVELOPE_KEYS if key in data}
    rewritten = {**envelope, **_Rewriter(redactor).mapping(data)}
    redacted = AuditReport.from_dict(rewritten)
    block: dict[str, Any] = {"scheme": REDACTION_SCHEME}
    block.update(redactor.summary())
    block["rewritten"] = list(REWRITTEN)
    if config.resolvers:
        block["rewritten"].append("resolver addresses and names, certificate SANs")
        block["kept"] = list(KEPT)
    else:
        block["kept"] = ["resolver addresses and names (what the admin acts on)", *KEPT]
    redacted.redaction = block
    return redacted


def merged_redaction(reports: Sequence[AuditReport]) -> dict[str, Any] | None:
    """The redaction block of reports about to be merged, or None when none is redacted.

    Merging must not mix: a redacted report beside an unredacted one would leak what the
    first hides, and two keys would give one address two pseudonyms.
    """
    blocks = [r.redaction for r in reports]
    if all(b is None for b in blocks):
        return None
    if any(b is None for b in blocks):
        raise RedactionError(
            "cannot merge redacted and unredacted reports: merge the unredacted reports, "
            "then redact the result"
        )
    first = blocks[0]
    assert first is not None
    for block in blocks[1:]:
        assert block is not None
        same = (
            block.get("key_fingerprint") == first.get("key_fingerprint")
            and _mapping(block.get("names")).get("level")
            == _mapping(first.get("names")).get("level")
            and _mapping(block.get("addresses")).get("resolvers")
            == _mapping(first.get("addresses")).get("resolvers")
        )
        if not same:
            raise RedactionError("cannot merge reports redacted with different keys or levels")
    return dict(first)


def original_names(report: AuditReport, config: RedactionConfig) -> Iterable[str]:
    """The names redaction looks at in ``report`` (for tests and previews)."""
    return sorted(collect(report.to_dict(), config)[2])
