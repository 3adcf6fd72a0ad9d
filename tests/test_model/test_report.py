"""The report vocabulary (dotaudit/model/report.py): merging, the input summary, what
``--fail-on`` weighs, and reading saved reports of this and the previous schema.

Oracles: for merging, analyzing files one at a time (the merge of per-file reports must
equal one analyze over all of them); for schema 1, report files written by dotaudit 0.1.0
before the schema moved (``data/report-v1-*.json``: ``analyze`` of
pcaps/03-plaintext-leaks.pcap, a bulk ``probe --targets`` of two closed loopback
addresses, and ``report`` merging the two).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dotaudit.detect.base import Context
from dotaudit.errors import InputError
from dotaudit.model.findings import Severity, make_finding
from dotaudit.model.policy import Policy
from dotaudit.model.report import (
    ANOMALY_SAMPLES,
    COMPLETE,
    PARTIAL,
    PREVIOUS_SCHEMA,
    REPORT_SCHEMA,
    SKIPPED,
    UNREADABLE,
    AuditReport,
    InputSummary,
    input_completeness,
    judge_input,
    load_report,
    merge_reports,
)
from dotaudit.pipeline import analyze
from tests import pcapgen
from tests.conftest import ROOT

DATA = Path(__file__).parent / "data"
SCHEMA = json.loads((ROOT / "schema" / "report.schema.json").read_text())


def saved(tmp_path: Path, data: dict[str, Any], name: str = "r.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_merge_sums_anomalies_and_keeps_differing_policies() -> None:
    one = AuditReport(kind="analyze", generated_at="2024-01-01", anomalies={"tcp_gap": 2})
    two = AuditReport(kind="analyze", generated_at="2024-02-01", anomalies={"tcp_gap": 3, "x": 1})
    one.policy, two.policy = {"fallback_window_s": 10.0}, {"fallback_window_s": 5.0}
    merged = merge_reports([one, two], "now")
    assert merged.anomalies == {"tcp_gap": 5, "x": 1}
    assert merged.policy == {"merged": [one.policy, two.policy]}
    assert merged.generated_at == "2024-02-01"
    assert merged.kind == "analyze"


def _dot_report(rows: list[str], totals: dict[str, int] | None) -> AuditReport:
    report = AuditReport(kind="analyze", generated_at="2024-01-01")
    report.sections["dot_sessions"] = [{"outcome": outcome} for outcome in rows]
    if totals is not None:
        report.sections["dot_session_totals"] = [
            {"outcome": outcome, "sessions": count} for outcome, count in totals.items()
        ]
    return report


def test_the_summary_counts_every_dot_session_not_only_the_listed_ones() -> None:
    capped = _dot_report(["established", "refused"], {"established": 7, "refused": 3})
    summary = capped.summary()
    assert (summary["dot_sessions"], summary["dot_established"]) == (10, 7)
    assert summary["dot_sessions_listed"] == 2
    # A report written before the totals existed counts its table.
    older = _dot_report(["established", "refused", "established"], None).summary()
    assert (older["dot_sessions"], older["dot_established"]) == (3, 2)
    assert older["dot_sessions_listed"] == 3


def test_merged_dot_session_totals_are_one_row_per_outcome() -> None:
    one = _dot_report(["established"], {"established": 4, "refused": 1})
    two = _dot_report(["reset"], {"reset": 2, "established": 5})
    merged = merge_reports([one, two], "now")
    assert merged.sections["dot_session_totals"] == [
        {"outcome": "established", "sessions": 9},
        {"outcome": "refused", "sessions": 1},
        {"outcome": "reset", "sessions": 2},
    ]
    assert merged.summary()["dot_sessions"] == 12
    assert merged.sections["dot_sessions"] == [{"outcome": "established"}, {"outcome": "reset"}]
    totals_schema = SCHEMA["properties"]["dot_session_totals"]
    jsonschema.validate(merged.to_dict()["dot_session_totals"], totals_schema)


def test_a_report_without_totals_merged_with_one_that_has_them_counts_its_table() -> None:
    older = _dot_report(["established", "reset", "established"], None)
    newer = _dot_report(["established"], {"established": 4, "refused": 1})
    merged = merge_reports([older, newer], "now")
    assert merged.sections["dot_session_totals"] == [
        {"outcome": "established", "sessions": 6},
        {"outcome": "refused", "sessions": 1},
        {"outcome": "reset", "sessions": 1},
    ]
    summary = merged.summary()
    assert (summary["dot_sessions"], summary["dot_established"]) == (8, 6)
    # Reports that all lack totals stay as they were: the summary counts their tables.
    both_old = merge_reports([older, _dot_report(["refused"], None)], "now")
    assert "dot_session_totals" not in both_old.sections
    assert both_old.summary()["dot_sessions"] == 4


def test_merge_keeps_probe_settings_and_every_bulk_run() -> None:
    settings = {"mode": "strict", "timeout_s": 3.0, "target_budget_s": 90.0}
    bulk = {"aggregate": {"targets": 2}, "interrupted": False, "targets_given": 2}
    analyzed = AuditReport(kind="analyze", generated_at="t", policy={"source": None})
    probed = [
        AuditReport(kind="probe", generated_at="t", probe_config=dict(settings), bulk=dict(bulk))
        for _ in range(2)
    ]
    merged = merge_reports([analyzed, *probed], "now")
    assert merged.kind == "combined"
    assert merged.policy == {"source": None}
    assert merged.probe_config == settings  # the same settings stay one
    assert merged.bulk == {"merged": [bulk, bulk]}  # two runs are never one, even if equal
    assert merge_reports([analyzed, probed[0]], "now").bulk == bulk


@pytest.mark.parametrize(("first", "second", "kept"), [(49, 5, 50), (50, 5, 50), (3, 4, 7)])
def test_merge_keeps_anomaly_samples_up_to_the_cap(first: int, second: int, kept: int) -> None:
    assert ANOMALY_SAMPLES == 50
    one = AuditReport(kind="analyze", generated_at="t")
    two = AuditReport(kind="analyze", generated_at="t")
    one.anomaly_samples = [{"what": "a", "frame": i} for i in range(first)]
    two.anomaly_samples = [{"what": "b", "frame": i} for i in range(second)]
    merged = merge_reports([one, two], "now")
    assert len(merged.anomaly_samples) == kept
    assert merged.anomaly_samples[:first] == one.anomaly_samples[:kept]


def test_one_analyze_equals_the_merge_of_each_file(tmp_path: Path) -> None:
    """The pipeline merges per-file results with merge_reports: same result as merging
    separately analyzed files."""
    a = pcapgen.fallback_capture(tmp_path / "a.pcap", "reset")
    b = pcapgen.plaintext_capture(tmp_path / "b.pcap", ["x.example", "y.example"])
    context = Context(policy=Policy())
    together = analyze([a, b], context, generated_at="t").to_dict()
    alone = [analyze([p], context, generated_at="t") for p in (a, b)]
    assert together["findings"] and together["plaintext_dns"]
    assert merge_reports(alone, "other").to_dict() == together


def test_input_summary_span() -> None:
    summary = InputSummary(path="x.pcap", first_ts=10.0, last_ts=12.5)
    assert summary.to_dict()["span_s"] == 2.5
    assert InputSummary(path="x.pcap").to_dict()["span_s"] is None


def test_exit_severity_weighs_findings_and_probed_targets() -> None:
    report = AuditReport(kind="probe", generated_at="t")
    assert report.exit_severity() is None
    report.sections["targets"] = [{"severity": "medium"}, {"severity": None}, "not a row"]  # type: ignore[list-item]
    assert report.highest_severity() is None
    assert report.exit_severity() is Severity.MEDIUM
    report.findings.append(make_finding("DA-PROBE-001", dedup_key="x"))
    assert report.exit_severity() is Severity.HIGH


def test_a_saved_report_round_trips(tmp_path: Path) -> None:
    report = AuditReport(kind="probe", generated_at="t", probe_config={"mode": "strict"})
    report.bulk = {"aggregate": {"targets": 1}, "interrupted": True, "targets_given": 3}
    report.sections["targets"] = [{"target": "192.0.2.1", "severity": "low"}]
    data = report.to_dict()
    assert data["schema"] == REPORT_SCHEMA == "dotaudit.report/2"
    assert load_report(saved(tmp_path, data)).to_dict() == data


def test_version_1_analyze_report_is_read_unchanged() -> None:
    original = json.loads((DATA / "report-v1-analyze.json").read_text())
    assert original["schema"] == PREVIOUS_SCHEMA
    report = load_report(str(DATA / "report-v1-analyze.json"))
    assert report.policy == original["policy"]
    assert report.probe_config == {} and report.bulk == {}
    upgraded = report.to_dict()
    jsonschema.validate(upgraded, SCHEMA)
    for key in ("inputs", "plaintext_dns", "anomalies"):
        assert upgraded[key] == original[key], key
    # Findings gained "related" (empty: version 1 had no links), the summary counts
    # machines: everything version 1 wrote is there unchanged.
    assert [{k: v for k, v in f.items() if k != "related"} for f in upgraded["findings"]] == (
        original["findings"]
    )
    assert all(f["related"] == [] for f in upgraded["findings"])
    assert {k: upgraded["summary"][k] for k in original["summary"]} == original["summary"]


def test_version_1_bulk_probe_report_moves_settings_and_aggregate() -> None:
    original = json.loads((DATA / "report-v1-probe-bulk.json").read_text())
    report = load_report(str(DATA / "report-v1-probe-bulk.json"))
    assert report.policy == {}
    assert report.probe_config == {
        k: v
        for k, v in original["policy"].items()
        if k not in ("aggregate", "interrupted", "targets_given")
    }
    assert report.probe_config["checks"] == ["reach.853"]
    assert report.bulk == {
        "aggregate": original["policy"]["aggregate"],
        "interrupted": False,
        "targets_given": 2,
    }
    # Version 1 targets carry no severity: only the findings count for --fail-on.
    assert report.target_severities() == []
    assert report.exit_severity() is Severity.HIGH  # DA-PROBE-001: strict refuse
    jsonschema.validate(report.to_dict(), SCHEMA)


def test_version_1_combined_report_splits_the_merged_policies() -> None:
    original = json.loads((DATA / "report-v1-combined.json").read_text())
    analyze_policy, probe_policy = original["policy"]["merged"]
    report = load_report(str(DATA / "report-v1-combined.json"))
    assert report.kind == "combined"
    assert report.policy == analyze_policy
    assert report.probe_config["mode"] == probe_policy["mode"] == "strict"
    assert report.bulk["aggregate"] == probe_policy["aggregate"]
    jsonschema.validate(report.to_dict(), SCHEMA)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"schema": "dotaudit.report/3"}, "schema 'dotaudit.report/3'"),
        ({"schema": None}, "schema None"),
        ({"targets": [{"severity": "critical"}]}, "unknown severity 'critical'"),
        ({"findings": [{"id": "X"}]}, "not a usable dotaudit report"),
        ({"probe_config": "not an object"}, "not a usable dotaudit report"),
    ],
)
def test_unusable_reports_are_refused_naming_the_file(
    tmp_path: Path, change: dict[str, Any], reason: str
) -> None:
    data = {**AuditReport(kind="probe", generated_at="t").to_dict(), **change}
    path = saved(tmp_path, data)
    with pytest.raises(InputError) as caught:
        load_report(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert reason in str(caught.value)


def test_hostile_rows_are_coerced_not_trusted(tmp_path: Path) -> None:
    data = AuditReport(kind="analyze", generated_at="t").to_dict()
    data["plaintext_dns"] = [None, {"client": ["a"], "queries": "many"}]
    data["inputs"] = ["x", {"packets": "lots"}]
    report = load_report(saved(tmp_path, data))
    assert report.sections["plaintext_dns"] == [{"client": "['a']", "queries": 0}]
    # "lots" is no count of 0 (which would judge the input unreadable): the judgement of
    # the entry as written is kept beside the coerced count.
    judged = {"status": "complete", "status_reason": None, "stopped_at": None}
    assert report.inputs == [{"packets": 0, **judged}]
    assert report.summary()["plaintext_queries"] == 0


# -- completeness: every input judged ---------------------------------------------------


@pytest.mark.parametrize(
    ("packets", "decoded", "stopped_at", "status"),
    [
        (0, 0, None, UNREADABLE),  # an empty capture: nothing read
        (0, 0, 24, UNREADABLE),  # a corrupt first record
        (5, 0, None, UNREADABLE),  # nothing decodable (a link type not decoded throughout)
        (5, 1, None, COMPLETE),  # one decoded packet is a capture that was read
        (5, 5, None, COMPLETE),
        (1, 1, 100, PARTIAL),  # read up to a cut: partial, however little came before
        (5, 0, 100, UNREADABLE),  # cut, and nothing before it decodable
    ],
)
def test_an_input_is_judged_by_what_was_read_and_decoded(
    packets: int, decoded: int, stopped_at: int | None, status: str
) -> None:
    judged = judge_input(
        packets=packets,
        decoded=decoded,
        undecoded={"unknown_linktype": packets - decoded} if packets > decoded else {},
        stopped_at=stopped_at,
        stop_reason="cut short (record data cut)" if stopped_at is not None else None,
    )
    assert judged.status == status
    assert judged.stopped_at == stopped_at
    assert (judged.reason is None) == (status == COMPLETE)
    if stopped_at is not None:
        assert f"byte offset {stopped_at}" in str(judged.reason)


def test_the_input_summary_counts_undecoded_packets_per_reason() -> None:
    summary = InputSummary(path="x.pcap", packets=4)
    summary.count_packets(
        records=5,  # one record the reader met but could not deliver
        undelivered={"packet_unknown_interface": 1},
        undecoded={"unknown_linktype": 3},
    )
    entry = summary.to_dict()
    assert entry["undecoded"] == {"packet_unknown_interface": 1, "unknown_linktype": 3}
    assert (entry["status"], entry["stopped_at"]) == (COMPLETE, None)  # 1 of 5 decoded
    summary.count_packets(records=5, undelivered={}, undecoded={"unknown_linktype": 5})
    entry = summary.to_dict()
    assert entry["status"] == UNREADABLE
    assert entry["status_reason"] == "none of its 4 packets could be decoded (unknown_linktype 5)"
    skipped = InputSummary(path="y.pcap", skipped="given twice").to_dict()
    assert (skipped["status"], skipped["status_reason"]) == (SKIPPED, "given twice")
    report = AuditReport(kind="analyze", generated_at="t", inputs=[entry, skipped])
    jsonschema.validate(report.to_dict(), SCHEMA)


def test_the_report_says_at_its_top_which_inputs_were_not_read_whole() -> None:
    report = AuditReport(
        kind="analyze",
        generated_at="t",
        inputs=[
            {"path": "ok.pcap", "packets": 3, "status": COMPLETE},
            {"path": "cut.pcap", "packets": 2, "status": PARTIAL, "status_reason": "cut"},
            {"path": "wifi.pcap", "packets": 9, "status": UNREADABLE, "status_reason": "lt"},
            {"path": "again.pcap", "status": SKIPPED, "status_reason": "given twice"},
        ],
    )
    data = report.to_dict()
    assert list(data)[:5] == ["schema", "tool", "kind", "generated_at", "completeness"]
    assert data["completeness"] == {
        "status": UNREADABLE,
        "inputs": {COMPLETE: 1, PARTIAL: 1, UNREADABLE: 1, SKIPPED: 1},
        "warnings": ["cut.pcap: partial: cut", "wifi.pcap: unreadable: lt"],
        "skipped": ["again.pcap: skipped: given twice"],
    }
    jsonschema.validate(data, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):  # the schema names the statuses
        jsonschema.validate(
            data | {"completeness": dict(data["completeness"], status="ok")}, SCHEMA
        )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data | {"inputs": [{"path": "a", "status": "read"}]}, SCHEMA)
    report.inputs.pop(2)
    assert report.completeness_status() == PARTIAL
    report.inputs.pop(1)
    assert report.completeness_status() == COMPLETE  # a skipped input is no gap
    assert AuditReport(kind="probe", generated_at="t").completeness_status() == COMPLETE


@pytest.mark.parametrize(
    ("entry", "status"),
    [
        ({"path": "a", "packets": 3, "truncated_at": None}, COMPLETE),
        ({"path": "a", "packets": 3, "truncated_at": 99}, PARTIAL),
        ({"path": "a", "packets": 0, "truncated_at": None}, UNREADABLE),
        ({"path": "a", "packets": "lots"}, COMPLETE),  # no count is not a count of 0
        ({"path": "a", "packets": False}, COMPLETE),
        ({"path": "a", "status": "bogus", "packets": 0}, UNREADABLE),  # unknown: judged again
    ],
)
def test_saved_inputs_without_a_status_are_judged_from_what_they_hold(
    entry: dict[str, Any], status: str
) -> None:
    """Reports written before inputs carried a status (schema 1, early schema 2)."""
    assert input_completeness(entry).status == status


def test_a_saved_version_1_report_is_complete() -> None:
    report = load_report(str(DATA / "report-v1-analyze.json"))
    assert report.completeness_status() == COMPLETE


def test_discovery_sections_appear_only_when_a_run_made_them() -> None:
    from dotaudit.model.report import AuditReport

    plain = AuditReport(kind="analyze", generated_at="t").to_dict()
    for name in ("network", "system_resolvers", "designations", "dnr", "survey", "targets"):
        assert name not in plain
    report = AuditReport(kind="probe", generated_at="t")
    report.sections["network"] = [
        {"verdict": "v", "clauses": [], "known_source": "none", "budget": {}}
    ]
    report.sections["survey"] = []
    data = report.to_dict()
    assert data["network"][0]["verdict"] == "v" and data["survey"] == []
    again = AuditReport.from_dict(data)
    assert again.sections["network"] == report.sections["network"]
    assert again.to_dict() == data
