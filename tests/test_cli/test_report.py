"""``dotaudit report`` (dotaudit/cli/report.py): re-rendering and merging saved JSON
reports, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

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
    html.parent.mkdir()
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
    b = analyzed(tmp_path, "b", ["two.example"])
    result = dotaudit("report", str(a), str(b), "--evidence", str(tmp_path), "-o", "x.html")
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


# -- a saved report says what its audit did not read --------------------------------------------


def saved_with(tmp_path: Path, damage: str) -> Path:
    leak = pcapgen.plaintext_capture(tmp_path / "leak.pcap", ["leak.example"])
    bad = pcapgen.damaged_capture(tmp_path / f"{damage}.pcap", damage)
    out = tmp_path / f"{damage}.json"
    dotaudit("analyze", str(leak), str(bad), "-q", "--fail-on", "none", "-o", str(out))
    assert load(out)["completeness"]["status"] in ("unreadable", "partial")
    return out


@pytest.mark.parametrize("fail_on", ["none", "high"])
def test_a_saved_report_with_an_unreadable_input_exits_2_again(
    tmp_path: Path, fail_on: str
) -> None:
    """A CI gate that re-renders a saved report must not pass what analyze failed."""
    saved = saved_with(tmp_path, "link-105")
    html = tmp_path / "r.html"
    result = dotaudit("report", str(saved), "--fail-on", fail_on, "-o", str(html))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    bad = tmp_path / "link-105.pcap"
    reason = "none of its 4 packets could be decoded (unknown_linktype 4)"
    assert lines[1] == "WARNING: incomplete audit: 1 unreadable of 2 inputs; nothing found " \
                       "there does not mean nothing there"  # fmt: skip
    assert lines[-1] == f"dotaudit: {bad}: unreadable: {reason}"
    body = html.read_text(encoding="utf-8")
    assert body.index('class="incomplete"') < body.index("<main>")


def test_a_saved_report_with_a_partial_input_fails_only_under_strict(tmp_path: Path) -> None:
    saved = saved_with(tmp_path, "cut")
    relaxed = dotaudit("report", str(saved), "-q", "--fail-on", "none", "-o", "-")
    assert relaxed.returncode == 0 and relaxed.stderr == ""
    assert load_text(relaxed.stdout)["completeness"]["status"] == "partial"
    strict = dotaudit("report", str(saved), "-q", "--fail-on", "none", "--strict")
    assert strict.returncode == 2
    assert strict.stderr.endswith("; 3 packets read before (--strict)\n")


def load_text(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    return data


def test_a_report_given_twice_or_copied_is_merged_once(tmp_path: Path) -> None:
    a = analyzed(tmp_path, "a", ["one.example"])
    copy = tmp_path / "copy.json"
    copy.write_bytes(a.read_bytes())
    result = dotaudit("report", str(a), str(a), str(copy), "-q", "--fail-on", "none")
    assert result.returncode == 0, result.stderr
    merged = load_text(result.stdout)
    assert len(merged["findings"]) == len(load(a)["findings"]) == 1
    assert merged["completeness"]["skipped"] == [
        f"{a}: skipped: given twice",
        f"{copy}: skipped: the same content as {a}",
    ]


def test_a_second_report_of_the_same_capture_is_merged_once(tmp_path: Path) -> None:
    """Two analyze runs of one capture (other times, other files): their findings are
    the same findings."""
    a = analyzed(tmp_path, "a", ["one.example"])
    again = tmp_path / "again.json"
    assert dotaudit("analyze", str(tmp_path / "a.pcap"), "-q", "--fail-on", "none",
                    "-o", str(again)).returncode == 0  # fmt: skip
    # Within one second both runs write the same bytes: make it a run of another time.
    rerun = load(again)
    rerun["generated_at"] = "2030-01-01T00:00:00Z"
    again.write_text(json.dumps(rerun), encoding="utf-8")
    other = analyzed(tmp_path, "b", ["two.example"])
    result = dotaudit("report", str(a), str(again), str(other), "-q", "--fail-on", "none")
    merged = load_text(result.stdout)
    assert len(merged["findings"]) == 2
    assert merged["completeness"]["skipped"] == [
        f"{again}: skipped: its captures are all in {a} already"
    ]


def test_report_never_overwrites_a_report_it_reads(tmp_path: Path) -> None:
    a = analyzed(tmp_path, "a", ["one.example"])
    before = a.read_bytes()
    result = dotaudit("report", str(a), "-o", str(a))
    assert result.returncode == 2
    assert result.stderr == f"dotaudit: {a}: is an input; refusing to overwrite it\n"
    assert a.read_bytes() == before
