"""The finding catalogue and its documentation stay in step."""

from __future__ import annotations

import re

from dotaudit.model.findings import CATALOGUE, Confidence, Finding, Severity, make_finding
from tests.conftest import ROOT


def test_every_catalogue_id_is_documented_with_its_severity() -> None:
    doc = (ROOT / "docs" / "findings.md").read_text()
    rows = dict(re.findall(r"^\| `(DA-[A-Z]+-\d{3})` \| (\w+) \|", doc, re.M))
    assert rows == {e.id: e.severity.label for e in CATALOGUE.values()}


def test_every_remediation_cites_a_source() -> None:
    for entry in CATALOGUE.values():
        assert re.search(r"RFC \d+|draft-|Bushart", entry.remediation), entry.id


def test_finding_round_trips_through_json_form() -> None:
    finding = make_finding(
        "DA-LEAK-001",
        dedup_key="f|c|s",
        client="192.0.2.1",
        server="198.51.100.1",
        evidence={"queries": 3},
        frames=[5, 3, 3, 9],
        first_ts=1.0,
        last_ts=2.0,
    )
    assert finding.frames == (3, 5, 9)
    assert finding.severity is Severity.HIGH and finding.confidence is Confidence.HIGH
    assert Finding.from_dict(finding.to_dict()) == finding


def test_documented_thresholds_are_the_codes() -> None:
    """docs/findings.md "Thresholds and caps": each row names a constant (or a Policy
    default) and its documented value; the code must hold exactly that value."""
    import dataclasses
    import importlib

    doc = (ROOT / "docs" / "findings.md").read_text()
    section = doc.split("## Thresholds and caps", 1)[1]
    rows = re.findall(r"^\| `([\w.]+)` \| ([\d.]+) \|", section, re.M)
    assert len(rows) >= 15
    for where, value in rows:
        module_name, _, name = where.rpartition(".")
        if module_name.endswith(".Policy"):
            module = importlib.import_module(module_name.rpartition(".")[0])
            fields = {f.name: f.default for f in dataclasses.fields(module.Policy)}
            actual = fields[name]
        else:
            actual = getattr(importlib.import_module(module_name), name)
        assert actual == float(value), (where, actual, value)
