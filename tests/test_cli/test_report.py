"""``dotaudit report`` (dotaudit/cli/report.py): re-rendering and merging saved JSON
reports, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from dotaudit.model.report import AuditReport
from tests import pcapgen
from tests.test_cli.command import SCHEMA, dotaudit
from tests.test_render.test_html import probe_report


def analyzed(tmp_path: Path, name: str, names: list[str]) -> Path:
    capture = pcapgen.plaintext_capture(tmp_path / f"{name}.pcap", names)
    out = tmp_path / f"{name}.json"
    result = dotaudit("analyze", str(capture), "-o", str(out), "-q", "--fail-on", "none")
    assert result.returncode == 0, result.stderr
    return out


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_single_report_round_trips_to_identical_json(tmp_path: Path) -> None:
    source = analyzed(tmp_path, "a", ["one.example", "two.example"])
    again = tmp_path / "again.json"
    result = dotaudit("report", str(source), "-o", str(again), "-q", "--fail-on", "none")
    assert result.returncode == 0, result.stderr
    assert load(again) == load(source)


def test_merge_concatenates_and_keeps_the_kind(tmp_path: Path) -> None:
    a = analyzed(tmp_path, "a", ["one.example"])
    b = analyzed(tmp_path, "b", ["two.example", "three.example"])
    merged_path = tmp_path / "merged.json"
    result = dotaudit("report", str(a), str(b), "-o", str(merged_path), "-q", "--fail-on", "none")
    assert result.returncode == 0, result.stderr
    merged, first, second = load(merged_path), load(a), load(b)
    assert merged["kind"] == "analyze"
    assert merged["inputs"] == first["inputs"] + second["inputs"]
    assert len(merged["findings"]) == len(first["findings"]) + len(second["findings"])
    assert merged["plaintext_dns"] == first["plaintext_dns"] + second["plaintext_dns"]
    assert merged["summary"]["plaintext_queries"] == 3
    assert merged["generated_at"] == max(first["generated_at"], second["generated_at"])


def test_analyze_and_probe_merge_into_one_combined_html(tmp_path: Path) -> None:
    a = analyzed(tmp_path, "a", ["leaky.example"])
    probe = tmp_path / "probe.json"
    probe.write_text(json.dumps(probe_report().to_dict()), encoding="utf-8")
    html = tmp_path / "reports" / "all.html"
    result = dotaudit("report", str(a), str(probe), "-o", str(html), "-q", "--fail-on", "high")
    assert result.returncode == 1  # the analyze half has a high finding
    body = html.read_text(encoding="utf-8")
    assert "Probe results" in body and "dns.quad9.net@9.9.9.9" in body
    assert "leaky.example" in body and "Report kind <b>combined</b>" in body


def test_bad_inputs_are_usage_errors_naming_the_file(tmp_path: Path) -> None:
    not_json = tmp_path / "x.json"
    not_json.write_text("{nope", encoding="utf-8")
    wrong_schema = tmp_path / "y.json"
    wrong_schema.write_text(json.dumps({"schema": "other/1"}), encoding="utf-8")
    bad_finding = tmp_path / "z.json"
    bad_finding.write_text(
        json.dumps({"schema": "dotaudit.report/1", "findings": [{"id": "X"}]}), encoding="utf-8"
    )
    for path in (not_json, wrong_schema, bad_finding, tmp_path / "missing.json"):
        result = dotaudit("report", str(path), "-o", str(tmp_path / "out.html"))
        assert result.returncode == 2, (path, result.stderr)
        assert path.name in result.stderr
    assert not (tmp_path / "out.html").exists()


def test_malformed_rows_in_a_saved_report_still_render(tmp_path: Path) -> None:
    data = AuditReport(kind="analyze", generated_at="t").to_dict()
    data["plaintext_dns"] = [None, {"client": ["a"], "queries": "many"}]
    data["inputs"] = ["x", {"packets": "lots"}]
    source = tmp_path / "odd.json"
    source.write_text(json.dumps(data), encoding="utf-8")
    result = dotaudit("report", str(source), "-o", str(tmp_path / "odd.html"), "--fail-on", "none")
    assert result.returncode == 0, result.stderr
    assert "<!DOCTYPE html>" in (tmp_path / "odd.html").read_text(encoding="utf-8")


def test_evidence_links_need_a_single_input(tmp_path: Path) -> None:
    a = analyzed(tmp_path, "a", ["one.example"])
    result = dotaudit("report", str(a), str(a), "--evidence", str(tmp_path), "-o", "x.html")
    assert result.returncode == 2 and "--evidence" in result.stderr


VERSION_1 = Path(__file__).parent.parent / "test_model" / "data"


def test_a_version_1_report_is_rewritten_as_version_2(tmp_path: Path) -> None:
    out, html = tmp_path / "r.json", tmp_path / "r.html"
    source = str(VERSION_1 / "report-v1-probe-bulk.json")
    result = dotaudit("report", source, "-o", str(out), "-q", "--fail-on", "none")
    assert result.returncode == 0, result.stderr
    data = load(out)
    jsonschema.validate(data, SCHEMA)
    assert data["schema"] == "dotaudit.report/2"
    assert data["policy"] == {} and data["bulk"]["targets_given"] == 2
    assert dotaudit("report", source, "-o", str(html), "-q", "--fail-on", "none").returncode == 0
    body = html.read_text(encoding="utf-8")
    assert "Probe settings" in body and "Default policy." not in body
