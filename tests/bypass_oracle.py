"""The full path as the oracle of the bypass (prefilter) path.

``differences(full, bypassed)`` compares the event records of one capture read both
ways and lists every difference that ``docs/events.md`` does not document for bypassed
flows. Documented: a connection record with ``bypassed_after`` may differ in its
counters, ``end``, ``last_frame``, ``ended_by``, its TLS record lists (the bypassed ones
are a prefix) and ``tls_records_truncated``, and may be written at another place in the
stream (a flow ends when its idle timeout passes as far as the packets read show);
``tls_alert`` records and stream anomalies of such a flow after ``bypassed_after`` are
missing. Everything else must be equal, in the same order.
"""

from __future__ import annotations

import json
from typing import Any

PARTIAL = frozenset(
    {
        "packets_fwd",
        "packets_rev",
        "bytes_fwd",
        "bytes_rev",
        "end",
        "last_frame",
        "ended_by",
        "tls_records_fwd",
        "tls_records_rev",
        "tls_records_truncated",
        "bypassed_after",
    }
)
AFTER_BYPASS = frozenset({"tls_alert", "anomaly"})
"""Record types of a bypassed flow that are not read after the bypass."""

Record = dict[str, Any]
FlowId = tuple[str, int, str, int, str]


def parse(text: str) -> list[Record]:
    return [json.loads(line) for line in text.splitlines() if line]


def _flow(record: Record) -> FlowId:
    return (record["src"], record["sport"], record["dst"], record["dport"], record["transport"])


def differences(full: list[Record], bypassed: list[Record]) -> list[str]:
    """Undocumented differences between the full-path and the bypass-path records."""
    problems: list[str] = []
    cut = [r for r in bypassed if r["type"] == "connection" and "bypassed_after" in r]
    cut_ids = {(_flow(r), r["first_frame"]) for r in cut}
    by_flow: dict[FlowId, list[Record]] = {}
    for record in cut:
        by_flow.setdefault(_flow(record), []).append(record)

    def after_bypass(record: Record) -> bool:
        ident = _flow(record)
        reverse = (ident[2], ident[3], ident[0], ident[1], ident[4])
        for conn in by_flow.get(ident, []) + by_flow.get(reverse, []):
            if conn["first_frame"] <= record["frame"] and conn["bypassed_after"] < record["frame"]:
                return True
        return False

    full_rest = [
        r
        for r in full
        if not (r["type"] == "connection" and (_flow(r), r["first_frame"]) in cut_ids)
        and not (r["type"] in AFTER_BYPASS and after_bypass(r))
    ]
    cut_rest = [r for r in bypassed if not (r["type"] == "connection" and "bypassed_after" in r)]
    if full_rest != cut_rest:
        for i, (a, b) in enumerate(zip(full_rest, cut_rest, strict=False)):
            if a != b:
                problems.append(f"record {i} differs:\n  full:   {a}\n  bypass: {b}")
                break
        else:
            problems.append(f"{len(full_rest)} records on the full path, {len(cut_rest)} bypassed")
    full_conns = {(_flow(r), r["first_frame"]): r for r in full if r["type"] == "connection"}
    for record in cut:
        whole = full_conns.get((_flow(record), record["first_frame"]))
        if whole is None:
            problems.append(f"no full-path connection for {record}")
            continue
        for name, value in whole.items():
            if name not in PARTIAL and record.get(name) != value:
                problems.append(f"{name}: {value!r} on the full path, {record.get(name)!r}")
        for side in ("tls_records_fwd", "tls_records_rev"):
            if whole[side][: len(record[side])] != record[side]:
                problems.append(f"{side} of {record} is not a prefix of the full list")
        if (
            whole["packets_fwd"] + whole["packets_rev"]
            < record["packets_fwd"] + record["packets_rev"]
        ):
            problems.append(f"a bypassed flow counted more packets than the full path: {record}")
    return problems
