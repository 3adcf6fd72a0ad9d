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
    PREVIOUS_SCHEMA,
    REPORT_SCHEMA,
    AuditReport,
    InputSummary,
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
    for key in ("findings", "inputs", "plaintext_dns", "summary", "anomalies"):
        assert upgraded[key] == original[key], key


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
    assert report.inputs == [{"packets": 0}]
    assert report.summary()["plaintext_queries"] == 0


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
