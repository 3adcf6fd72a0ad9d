"""The one envelope for ``analyze`` and ``probe`` results, and everything said about it.

``AuditReport`` is what every renderer takes; renderers never decide verdicts, and the
summary is computed here once so that every format shows the same totals. This module
also owns the report's vocabulary around it: the ``inputs[]`` entry of a capture
(:class:`InputSummary`), merging reports (one per file, or several saved ones), and
reading a saved JSON report back (:func:`load_report`), including the previous schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dotaudit import __version__
from dotaudit.errors import InputError
from dotaudit.model.coerce import as_dict, as_int, rows_of, scalar
from dotaudit.model.findings import Finding, Severity

if TYPE_CHECKING:  # `events` never asks for machines: it does not pay for their import
    from dotaudit.model.fix_first import FixFirst

REPORT_SCHEMA = "dotaudit.report/2"
"""Version 2 moved the probe settings out of ``policy`` into ``probe_config`` and the bulk
aggregate into ``bulk``, and gave each probed target the ``severity`` it counts with."""
PREVIOUS_SCHEMA = "dotaudit.report/1"
"""Still read by :func:`load_report`, upgraded to the current shape on the way in."""

SECTION_NAMES = (
    "plaintext_dns",
    "dot_sessions",
    "dot_session_totals",
    "fallback_events",
    "sni_inventory",
    "doh_doq",
    "local_names",
    "machines",
    "targets",
    "network",
    "system_resolvers",
    "designations",
    "dnr",
    "survey",
)
OPTIONAL_SECTIONS = frozenset(SECTION_NAMES) - {
    "plaintext_dns",
    "dot_sessions",
    "fallback_events",
    "sni_inventory",
    "doh_doq",
    "local_names",
}
"""Sections written only when a run made them: a probe's targets and its discovery, an
analysis's ``machines`` (which addresses are one machine) and DoT session totals (a
report written before they existed has none: its table is all it counts)."""

ANOMALY_SAMPLES = 50
"""Anomaly records a report keeps as examples (per file and after merging); all are counted."""
MAX_REPORT_BYTES = 512 * 1024 * 1024
"""A saved JSON report larger than this is refused rather than read into memory."""

_BULK_KEYS = ("aggregate", "interrupted", "targets_given")
"""What a bulk probe run added to ``policy`` in schema version 1."""

# -- completeness: was every input read? -------------------------------------------

COMPLETE = "complete"
"""Read to its end, and packets were decoded."""
PARTIAL = "partial"
"""Reading stopped before the end (a cut, as a killed tcpdump leaves it, or a corrupt
record): what came before was analysed. A warning; ``--strict`` makes it an error."""
UNREADABLE = "unreadable"
"""Nothing could be decoded: no packets, a corrupt first record, or a link type not
decoded throughout. The audit is incomplete: exit status 2."""
SKIPPED = "skipped"
"""Not read on purpose: the same content as another input, an evidence directory, or a
file named like a capture that is not one."""
INPUT_STATUSES = (COMPLETE, PARTIAL, UNREADABLE, SKIPPED)


@dataclass(frozen=True)
class Completeness:
    """How much of one input was read: its ``status`` and why (with the byte offset
    where reading stopped)."""

    status: str
    reason: str | None = None
    stopped_at: int | None = None


def judge_input(
    *,
    packets: int,
    decoded: int,
    undecoded: Mapping[str, int],
    stopped_at: int | None,
    stop_reason: str | None,
) -> Completeness:
    """The one judgement of an input that was read, from what its reader and decoder
    reported: ``packets`` read, ``decoded`` of them, ``undecoded`` per reason, and where
    (and why) reading stopped early, if it did."""
    where = f" at byte offset {stopped_at}" if stopped_at is not None else ""
    if packets <= 0:
        if stopped_at is not None:
            return Completeness(UNREADABLE, f"no packet read: {stop_reason}{where}", stopped_at)
        return Completeness(UNREADABLE, "the capture holds no packets")
    if decoded <= 0:
        reasons = ", ".join(
            f"{what} {count}" for what, count in sorted(undecoded.items(), key=lambda kv: -kv[1])
        )
        detail = f" ({reasons})" if reasons else ""
        stop = f"; then {stop_reason}{where}" if stopped_at is not None else ""
        return Completeness(
            UNREADABLE, f"none of its {packets} packets could be decoded{detail}{stop}", stopped_at
        )
    if stopped_at is not None:
        read = f"{packets} packet{'s' if packets != 1 else ''}"
        return Completeness(PARTIAL, f"{stop_reason}{where}; {read} read before", stopped_at)
    return Completeness(COMPLETE)


def input_completeness(item: Mapping[str, Any]) -> Completeness:
    """The completeness an ``inputs[]`` entry records (from any JSON: checked). Entries
    written before statuses were recorded are judged from what they hold: a truncation
    offset is partial, a packet count of 0 unreadable."""
    status = item.get("status")
    stopped = item.get("stopped_at")
    stopped_at = stopped if isinstance(stopped, int) and not isinstance(stopped, bool) else None
    if status in INPUT_STATUSES:
        reason = item.get("status_reason")
        return Completeness(str(status), None if reason is None else str(reason), stopped_at)
    truncated = item.get("truncated_at")
    if isinstance(truncated, int) and not isinstance(truncated, bool):
        return Completeness(PARTIAL, f"truncated at byte offset {truncated}", truncated)
    packets = item.get("packets")
    if packets == 0 and not isinstance(packets, bool):
        return Completeness(UNREADABLE, "no packets read")
    return Completeness(COMPLETE)


@dataclass
class InputSummary:
    """What one capture file was: the ``inputs[]`` entry of a report."""

    path: str
    sha256: str = ""
    format: str = ""
    packets: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    truncated_at: int | None = None
    warnings: list[str] = field(default_factory=list)
    anomalies: int = 0
    encapsulations: dict[str, int] = field(default_factory=dict)
    """Packets per encapsulation layer decoded (``vxlan``, ``gre``, ``pppoe``, ...)."""
    not_ip: dict[str, int] = field(default_factory=dict)
    """Frames of ordinary non-IP traffic per kind (``arp``, ``lldp``, ``llc``, ...)."""
    other_ip: dict[str, int] = field(default_factory=dict)
    """IP packets of protocols not read, per protocol (``igmp``, ``esp``, ...)."""
    capture_set: dict[str, Any] | None = None
    """The ``set`` a file was read in, with other files as one timeline: its ``name`` (the
    path of its first file, the ``file`` its events carry while analysed), this file's
    place (``member``, from 1, of ``members``), why the files were grouped
    (``grouped_by``), and ``duplicate_frames``: frames of this file skipped as repeats
    of another file's (counted in ``packets``, analysed once). None for a file read alone."""
    undecoded: dict[str, int] = field(default_factory=dict)
    """Packets that could not be decoded, per reason (the decoder's anomaly, or why the
    reader could not deliver a packet record)."""
    decoded: int = 0
    """Packets decoded (read, less ``undecoded``); not written out."""
    stopped_at: int | None = None
    """Byte offset where reading stopped before the end of the file, if it did."""
    stop_reason: str | None = None
    skipped: str | None = None
    """Why the file was not read at all (it is listed, with this reason)."""

    def count_packets(
        self,
        *,
        records: int,
        undelivered: Mapping[str, int],
        undecoded: Mapping[str, int],
    ) -> None:
        """Take what the reader met (``records``, ``undelivered`` of them) and what the
        decoder could not decode (every shard's decoder sees every packet)."""
        counts = dict(undelivered)
        for what, count in undecoded.items():
            counts[what] = counts.get(what, 0) + count
        self.undecoded = dict(sorted(counts.items()))
        self.decoded = max(records - sum(counts.values()), 0)

    def completeness(self) -> Completeness:
        if self.skipped is not None:
            return Completeness(SKIPPED, self.skipped)
        return judge_input(
            packets=self.packets,
            decoded=self.decoded,
            undecoded=self.undecoded,
            stopped_at=self.stopped_at,
            stop_reason=self.stop_reason,
        )

    def count_traffic(
        self,
        encapsulations: Mapping[str, int],
        not_ip: Mapping[str, int],
        other_ip: Mapping[str, int],
    ) -> None:
        """Take the decoder's tallies (every shard's decoder sees every packet)."""
        self.encapsulations = dict(sorted(encapsulations.items()))
        self.not_ip = dict(sorted(not_ip.items()))
        self.other_ip = dict(sorted(other_ip.items()))

    def to_dict(self) -> dict[str, object]:
        judged = self.completeness()
        tallies = {
            name: counts
            for name, counts in (
                ("encapsulations", self.encapsulations),
                ("not_ip", self.not_ip),
                ("other_ip", self.other_ip),
            )
            if counts  # absent when empty: reports of plain captures keep their shape
        }
        return {
            "path": self.path,
            "sha256": self.sha256,
            "format": self.format,
            "packets": self.packets,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "span_s": (
                round(self.last_ts - self.first_ts, 6)
                if self.first_ts is not None and self.last_ts is not None
                else None
            ),
            "truncated_at": self.truncated_at,
            "status": judged.status,
            "status_reason": judged.reason,
            "stopped_at": judged.stopped_at,
            "undecoded": dict(self.undecoded),
            "warnings": list(self.warnings),
            "anomalies": self.anomalies,
            **tallies,
            **({"set": self.capture_set} if self.capture_set is not None else {}),
        }


@dataclass
class AuditReport:
    kind: str
    """"analyze", "probe" or "combined"."""
    generated_at: str
    inputs: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    anomalies: dict[str, int] = field(default_factory=dict)
    anomaly_samples: list[dict[str, Any]] = field(default_factory=list)
    sections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    """The audit policy ``analyze`` judged with."""
    probe_config: dict[str, Any] = field(default_factory=dict)
    """The settings ``probe`` ran with (mode, timeouts, CA, pins, checks)."""
    bulk: dict[str, Any] = field(default_factory=dict)
    """A bulk probe run (``--targets``): the aggregate, whether it was interrupted."""
    tool_version: str = __version__
    redaction: dict[str, Any] | None = None
    """Set on a redacted report: levels, key fingerprint, what was rewritten and kept."""

    def sorted_findings(self) -> list[Finding]:
        return sorted(
            self.findings,
            key=lambda f: (-f.severity, -f.confidence, f.id, f.first_ts or 0.0, f.dedup_key),
        )

    def counts_by_severity(self) -> dict[str, int]:
        counts = {s.label: 0 for s in sorted(Severity, reverse=True)}
        for finding in self.findings:
            counts[finding.severity.label] += 1
        return counts

    def highest_severity(self) -> Severity | None:
        """The highest finding."""
        return max((f.severity for f in self.findings), default=None)

    def target_severities(self) -> list[Severity]:
        """How each probed target counts towards ``--fail-on`` (its ``severity``)."""
        levels = []
        for row in self.sections.get("targets", []):
            label = row.get("severity") if isinstance(row, dict) else None
            if isinstance(label, str) and label.upper() in Severity.__members__:
                levels.append(Severity[label.upper()])
        return levels

    def exit_severity(self) -> Severity | None:
        """What ``--fail-on`` is compared with: the highest finding or probed target, both
        shown in every format of the report."""
        return max((*(f.severity for f in self.findings), *self.target_severities()), default=None)

    def input_judgements(self) -> list[tuple[str, Completeness]]:
        """Each input's path and completeness, in report order."""
        return [
            (str(item.get("path", "")), input_completeness(item))
            for item in self.inputs
            if isinstance(item, dict)
        ]

    def completeness_status(self) -> str:
        """The worst status of the inputs that were read: unreadable, partial or complete
        (a report without inputs, such as a probe's, is complete)."""
        statuses = {judged.status for _, judged in self.input_judgements()}
        for status in (UNREADABLE, PARTIAL):
            if status in statuses:
                return status
        return COMPLETE

    def completeness(self) -> dict[str, Any]:
        """What the top of every format says about the inputs: the worst status, the
        count per status, one warning line per input not read whole, one line per input
        skipped."""
        counts = dict.fromkeys(INPUT_STATUSES, 0)
        warnings: list[str] = []
        skipped: list[str] = []
        for path, judged in self.input_judgements():
            counts[judged.status] += 1
            line = f"{path}: {judged.status}" + (f": {judged.reason}" if judged.reason else "")
            if judged.status == SKIPPED:
                skipped.append(line)
            elif judged.status != COMPLETE:
                warnings.append(line)
        return {
            "status": self.completeness_status(),
            "inputs": counts,
            "warnings": warnings,
            "skipped": skipped,
        }

    def fix_first(self) -> FixFirst:
        """What to fix first, by machine and action (``model/fix_first.py``)."""
        from dotaudit.model.fix_first import fix_first

        return fix_first(self.findings, self.sections)

    def summary(self, first: FixFirst | None = None) -> dict[str, Any]:
        """Counts for the report's summary; ``first`` is this report's ``fix_first()``
        when the caller already has it (grouping machines is the costly part)."""
        # Reports may be re-read from JSON written by anyone: count defensively.
        plaintext = [r for r in self.sections.get("plaintext_dns", []) if isinstance(r, dict)]
        sessions = [r for r in self.sections.get("dot_sessions", []) if isinstance(r, dict)]
        network = [r for r in plaintext if not r.get("local_stub")]
        clients = {str(row.get("client")) for row in network}
        first = first or self.fix_first()
        plaintext_machines = {
            id(m) for m in first.machines if any(a in clients for a in m.addresses)
        }
        return {
            "findings": len(self.findings),
            "by_severity": self.counts_by_severity(),
            "machines": len(first.machines),
            "client_addresses": first.addresses,
            "machines_by_severity": first.by_severity(),
            "packets": sum(_packets(i) for i in self.inputs if isinstance(i, dict)),
            "plaintext_queries": sum(_count(row.get("queries")) for row in network),
            "plaintext_clients": len(clients),
            "plaintext_machines": len(plaintext_machines),
            **_dot_session_counts(sessions, self.sections.get("dot_session_totals")),
            "fallback_events": len(self.sections.get("fallback_events", [])),
            "anomalies": sum(self.anomalies.values()),
        }

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": REPORT_SCHEMA,
            "tool": {"name": "dotaudit", "version": self.tool_version},
            "kind": self.kind,
            "generated_at": self.generated_at,
            "completeness": self.completeness(),
            "inputs": self.inputs,
            "policy": self.policy,
        }
        if self.probe_config:
            out["probe_config"] = self.probe_config
        if self.bulk:
            out["bulk"] = self.bulk
        first = self.fix_first()
        out |= {
            "summary": self.summary(first),
            "fix_first": first.to_dict(),
            "findings": [f.to_dict() for f in self.sorted_findings()],
            "anomalies": {
                "counts": dict(sorted(self.anomalies.items())),
                "samples": self.anomaly_samples,
            },
        }
        for name in SECTION_NAMES:
            if name in self.sections or name not in OPTIONAL_SECTIONS:
                out[name] = self.sections.get(name, [])
        if self.redaction is not None:
            out["redaction"] = self.redaction
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditReport:
        """A report from its JSON; version 1 is upgraded. Raises ValueError (and KeyError,
        TypeError) on anything that is not a usable report."""
        schema = data.get("schema")
        if schema == PREVIOUS_SCHEMA:
            data = _upgrade_from_version_1(data)
        elif schema != REPORT_SCHEMA:
            raise ValueError(f"not a dotaudit report (schema {schema!r})")
        anomalies = data.get("anomalies") or {}
        report = cls(
            kind=str(data.get("kind", "analyze")),
            generated_at=str(data.get("generated_at", "")),
            inputs=list(data.get("inputs") or []),
            findings=[Finding.from_dict(f) for f in data.get("findings") or []],
            anomalies=dict(anomalies.get("counts") or {}),
            anomaly_samples=list(anomalies.get("samples") or []),
            policy=dict(data.get("policy") or {}),
            probe_config=dict(data.get("probe_config") or {}),
            bulk=dict(data.get("bulk") or {}),
            tool_version=str((data.get("tool") or {}).get("version", "")),
        )
        redaction = data.get("redaction")
        if redaction is not None:
            if not isinstance(redaction, dict):
                raise ValueError("redaction is not an object")
            report.redaction = dict(redaction)
        for name in SECTION_NAMES:
            if name in data:
                report.sections[name] = list(data[name])
        for row in rows_of(report.sections.get("targets")):
            label = row.get("severity")
            if label is not None:
                Severity.parse(str(label))  # an unknown severity would count as nothing
        return report


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _dot_session_counts(sessions: list[dict[str, Any]], totals: Any) -> dict[str, int]:
    """DoT sessions, established ones, and those the table lists. The table may stop at
    its cap; the totals (one row per outcome, per input) count every session. A report
    without them (written before they existed) counts its table."""
    listed = len(sessions)
    if not isinstance(totals, list):
        established = sum(1 for s in sessions if s.get("outcome") == "established")
        return {
            "dot_sessions": listed,
            "dot_established": established,
            "dot_sessions_listed": listed,
        }
    rows = [r for r in totals if isinstance(r, dict)]
    return {
        "dot_sessions": sum(_count(r.get("sessions")) for r in rows),
        "dot_established": sum(
            _count(r.get("sessions")) for r in rows if r.get("outcome") == "established"
        ),
        "dot_sessions_listed": listed,
    }


def _packets(item: dict[str, Any]) -> int:
    """Packets an input contributed: a file of a set counts without its duplicates."""
    packets = _count(item.get("packets"))
    capture_set = item.get("set")
    if isinstance(capture_set, dict):
        packets -= min(_count(capture_set.get("duplicate_frames")), packets)
    return packets


def _is_probe_config(settings: dict[str, Any]) -> bool:
    return "mode" in settings and "target_budget_s" in settings


def _upgrade_from_version_1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 kept the probe settings and the bulk aggregate inside ``policy``
    (merged reports: ``{"merged": [...]}`` of them); its targets carry no severity."""
    policy = data.get("policy")
    if not isinstance(policy, dict):
        return {**data, "schema": REPORT_SCHEMA}
    entries = policy["merged"] if list(policy) == ["merged"] else [policy]
    analyze: list[dict[str, Any]] = []
    probe: list[dict[str, Any]] = []
    bulk: list[dict[str, Any]] = []
    for entry in rows_of(entries):
        if not _is_probe_config(entry):
            analyze.append(entry)
            continue
        probe.append({k: v for k, v in entry.items() if k not in _BULK_KEYS})
        if any(k in entry for k in _BULK_KEYS):
            bulk.append({k: entry[k] for k in _BULK_KEYS if k in entry})
    return {
        **data,
        "schema": REPORT_SCHEMA,
        "policy": _same_or_merged(analyze),
        "probe_config": _same_or_merged(probe),
        "bulk": bulk[0] if len(bulk) == 1 else ({"merged": bulk} if bulk else {}),
    }


def _same_or_merged(settings: list[dict[str, Any]]) -> dict[str, Any]:
    """One settings object when every report had the same, else ``{"merged": [...]}``."""
    if not settings:
        return {}
    if all(s == settings[0] for s in settings):
        return settings[0]
    return {"merged": settings}


def merge_reports(reports: Sequence[AuditReport], generated_at: str) -> AuditReport:
    """One report from several: inputs, findings, sections and anomalies concatenated in
    order, anomaly counts summed and samples kept up to :data:`ANOMALY_SAMPLES`.

    ``kind`` stays "analyze" or "probe" when every input has it, else "combined"; the
    newest ``generated_at`` wins (``generated_at`` when none has one). Settings that
    differ between reports are all kept, under ``"merged"``.
    """
    if len(reports) == 1:
        return reports[0]
    kinds = {r.kind for r in reports}
    versions = sorted({r.tool_version for r in reports if r.tool_version})
    stamps = [r.generated_at for r in reports if r.generated_at]
    bulk = [r.bulk for r in reports if r.bulk]
    merged = AuditReport(
        kind=kinds.pop() if len(kinds) == 1 else "combined",
        generated_at=max(stamps) if stamps else generated_at,
        tool_version=", ".join(versions) or __version__,
        policy=_same_or_merged([r.policy for r in reports if r.policy]),
        probe_config=_same_or_merged([r.probe_config for r in reports if r.probe_config]),
        # Two runs' aggregates are never one, even when they are equal.
        bulk=bulk[0] if len(bulk) == 1 else ({"merged": bulk} if bulk else {}),
    )
    for report in reports:
        merged.inputs.extend(report.inputs)
        merged.findings.extend(report.findings)
        for what, count in report.anomalies.items():
            merged.anomalies[what] = merged.anomalies.get(what, 0) + int(count)
        room = max(ANOMALY_SAMPLES - len(merged.anomaly_samples), 0)
        merged.anomaly_samples.extend(report.anomaly_samples[:room])
    merged.sections = combined_sections(report.sections for report in reports)
    return merged


def combined_sections(
    parts: Iterable[Mapping[str, list[dict[str, Any]]]],
) -> dict[str, list[dict[str, Any]]]:
    """The sections of several runs (files, shares of a cluster's clients) as one: rows
    in order, and the totals summed, as one run over all of them would count."""
    sections: dict[str, list[dict[str, Any]]] = {}
    untotalled: list[dict[str, Any]] = []  # DoT rows of reports written before totals
    for part in parts:
        for name, rows in part.items():
            sections.setdefault(name, []).extend(rows)
        if "dot_session_totals" not in part:
            untotalled.extend(rows_of(part.get("dot_sessions")))
    if "dot_session_totals" in sections:
        # Their table is all such a part can tell: each row counts as one session.
        counted = [{"outcome": row.get("outcome"), "sessions": 1} for row in untotalled]
        sections["dot_session_totals"] = _summed_totals(sections["dot_session_totals"] + counted)
    return sections


def _summed_totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per outcome, as one run over every input would count them."""
    sums: dict[str, int] = {}
    for row in rows_of(rows):
        outcome = str(row.get("outcome"))
        sums[outcome] = sums.get(outcome, 0) + _count(row.get("sessions"))
    return [{"outcome": outcome, "sessions": count} for outcome, count in sorted(sums.items())]


def coerce_report(report: AuditReport) -> AuditReport:
    """A copy whose shape the model's own totals can rely on.

    A report read back from JSON may hold anything; ``AuditReport.summary`` expects
    dict rows, hashable clients and numeric counts. Rows that are not objects are dropped.
    """
    sections: dict[str, list[dict[str, Any]]] = {}
    for name, rows in report.sections.items():
        clean = []
        for row in rows_of(rows):
            row = dict(row)
            if "client" in row:
                row["client"] = scalar(row["client"])
            if "queries" in row:
                row["queries"] = as_int(row["queries"])
            clean.append(row)
        sections[str(name)] = clean
    inputs = [_coerced_input(item) for item in rows_of(report.inputs)]
    return replace(
        report,
        inputs=inputs,
        sections=sections,
        anomalies={str(k): as_int(v) for k, v in as_dict(report.anomalies).items()},
        anomaly_samples=rows_of(report.anomaly_samples),
        policy=as_dict(report.policy),
        probe_config=as_dict(report.probe_config),
        bulk=as_dict(report.bulk),
        generated_at=str(report.generated_at),
        tool_version=str(report.tool_version),
        kind=str(report.kind),
    )


def _coerced_input(item: dict[str, Any]) -> dict[str, Any]:
    """An ``inputs[]`` entry with a numeric packet count, judged as it was read: when
    coercing would change its completeness (a count of "lots" is no count of 0), the
    judgement is recorded in it."""
    coerced = dict(item, packets=as_int(item.get("packets")))
    judged = input_completeness(item)
    if input_completeness(coerced) != judged:
        coerced |= {
            "status": judged.status,
            "status_reason": judged.reason,
            "stopped_at": judged.stopped_at,
        }
    return coerced


def load_report(path: str) -> AuditReport:
    """A saved ``--format json`` report (this schema or the previous one), coerced; anything
    else is an :class:`InputError` naming the file."""
    source = Path(path)
    try:
        if source.stat().st_size > MAX_REPORT_BYTES:
            raise InputError(f"{path}: larger than {MAX_REPORT_BYTES >> 20} MiB")
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except MemoryError:
        raise InputError(f"{path}: out of memory reading it") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a JSON report ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a dotaudit report (not a JSON object)")
    try:
        return coerce_report(AuditReport.from_dict(data))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{path}: not a usable dotaudit report ({exc})") from None
