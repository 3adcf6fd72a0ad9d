"""Redacting real reports: the grep test over every byte of every rendering and pcap.

Inputs are the office sample capture (pcaps/09-office.pcap, recorded in the lab: IPv4
and IPv6 clients, plaintext DNS, fallbacks, DoT, DoQ, mDNS/LLMNR, ECS) and the hostile
capture of the HTML tests, both through the real analyze pipeline.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from markupsafe import escape

from dotaudit.capture.evidence import write_evidence
from dotaudit.capture.redact_frames import FrameRewriter
from dotaudit.detect.base import Context
from dotaudit.model.evidence import plan_evidence
from dotaudit.model.report import AuditReport
from dotaudit.pipeline import analyze
from dotaudit.redact import (
    NameLevel,
    RedactionConfig,
    RedactionError,
    RedactionKey,
    merged_redaction,
    redact_report,
    redactor_for,
)
from dotaudit.redact.names import split_labels, strip_root
from dotaudit.redact.redactor import identifies_nobody
from dotaudit.redact.report import collect
from dotaudit.render.base import OutputFormat, render
from tests.conftest import ROOT
from tests.test_render.hostile import write_hostile_capture

SCHEMA = json.loads((ROOT / "schema" / "report.schema.json").read_text())
KEY = RedactionKey(bytes(range(32)))
OTHER_KEY = RedactionKey(bytes(range(100, 132)))
ADDRESS_TOKEN = re.compile(r"[0-9a-fA-F:.]*[:.][0-9a-fA-F:.]+")


@pytest.fixture(scope="module")
def office() -> AuditReport:
    return analyze([ROOT / "pcaps" / "09-office.pcap"], Context(), generated_at="2026-01-01")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> AuditReport:
    capture = write_hostile_capture(tmp_path_factory.mktemp("hostile") / "hostile.pcap")
    return analyze([capture], Context(), generated_at="2026-01-01")


def renderings(report: AuditReport, evidence: Path | None = None) -> dict[str, str]:
    out = {fmt.value: render(report, fmt) for fmt in OutputFormat}
    if evidence is not None:
        out["html+links"] = render(
            report, OutputFormat.HTML, evidence_dir=str(evidence), output=str(evidence / "r.html")
        )
    return out


def text_forms(text: str) -> set[str]:
    """How a value can appear in the outputs: as is, JSON-escaped, HTML-escaped."""
    return {
        text,
        json.dumps(text, ensure_ascii=False)[1:-1],
        json.dumps(text)[1:-1],
        str(escape(text)),
    }


def address_forms(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> set[str]:
    forms = {str(address), address.exploded, address.compressed, address.reverse_pointer}
    if isinstance(address, ipaddress.IPv4Address):
        forms.add(".".join(reversed(str(address).split("."))))  # as reverse-DNS labels
    return forms


def hidden_parts(report: AuditReport, config: RedactionConfig) -> tuple[set[str], set[str]]:
    """(whole names the mask hides something of, their distinctive hidden labels)."""
    redactor = redactor_for(report, config)
    names: set[str] = set()
    labels: set[str] = set()
    for name in collect(report.to_dict(), config)[2]:
        if not redactor.hides(name):
            continue
        stripped = strip_root(name)
        names.add(stripped)
        parts = split_labels(stripped)
        kept = redactor.masker.kept_labels([p.lower() for p in parts])
        labels.update(p for p in parts[: len(parts) - kept] if len(p) >= 5)
    return names, labels


def rewritten_addresses(report: AuditReport, config: RedactionConfig) -> set[Any]:
    """Every address in the unredacted JSON that redaction must not let through."""
    redactor = redactor_for(report, config)
    found: set[Any] = set()
    for token in ADDRESS_TOKEN.findall(json.dumps(report.to_dict())):
        for candidate in (token, token.rstrip(".:"), token.rpartition(":")[0]):
            try:
                address = ipaddress.ip_address(candidate)
            except ValueError:
                continue
            if not redactor.keeps(address) and not identifies_nobody(address):
                found.add(address)
            break
    return found


def redact_all(
    report: AuditReport, config: RedactionConfig, directory: Path
) -> tuple[AuditReport, dict[str, str], list[bytes]]:
    redactor = redactor_for(report, config)
    redacted = redact_report(report, config, redactor)
    rewriter = FrameRewriter(redactor)
    evidence = directory / "evidence"
    written = write_evidence(plan_evidence(redacted.sorted_findings()), evidence, rewriter.rewrite)
    assert redacted.redaction is not None
    redacted.redaction["evidence"] = rewriter.summary()
    pcaps = [path.read_bytes() for path in sorted(evidence.glob("*.pcap"))]
    assert len(pcaps) == written
    return redacted, renderings(redacted, evidence), pcaps


def assert_nothing_leaks(
    original: AuditReport,
    config: RedactionConfig,
    outputs: dict[str, str],
    pcaps: list[bytes],
    boilerplate: str,
) -> None:
    addresses = rewritten_addresses(original, config)
    names, labels = hidden_parts(original, config)
    assert addresses and names, "the input must have something to hide"
    texts = {fmt: body.lower() for fmt, body in outputs.items()}
    for address in addresses:
        for form in address_forms(address):
            for fmt, body in texts.items():
                assert form.lower() not in body, (str(address), form, fmt)
        for pcap in pcaps:
            assert address.packed not in pcap, (str(address), "pcap")
    for name in names:
        for form in text_forms(name):
            for fmt, body in texts.items():
                assert form.lower() not in body, (name, form, fmt)
    for label in labels:
        if label.lower() in boilerplate:
            continue  # a word the templates use anyway
        for form in text_forms(label):
            for fmt, body in texts.items():
                assert form.lower() not in body, (label, form, fmt)
        if label.isascii() and "\\" not in label:
            for pcap in pcaps:
                assert label.lower().encode() not in pcap.lower(), (label, "pcap")


@pytest.fixture(scope="module")
def boilerplate() -> str:
    empty = AuditReport(kind="analyze", generated_at="")
    return "\n".join(renderings(empty).values()).lower()


@pytest.mark.parametrize("level", [NameLevel.REGISTRABLE, NameLevel.ALL])
@pytest.mark.parametrize("hide_resolvers", [False, True])
def test_office_report_passes_the_grep_test(
    office: AuditReport,
    boilerplate: str,
    tmp_path: Path,
    level: NameLevel,
    hide_resolvers: bool,
) -> None:
    config = RedactionConfig(key=KEY, names=level, resolvers=hide_resolvers)
    before = copy.deepcopy(office.to_dict())
    redacted, outputs, pcaps = redact_all(office, config, tmp_path)
    assert office.to_dict() == before, "redaction must not touch its input"
    assert_nothing_leaks(office, config, outputs, pcaps, boilerplate)
    assert redacted.redaction is not None
    assert redacted.redaction["evidence"]["dns_labels_hidden"] > 0
    data = json.loads(outputs["json"])
    jsonschema.validate(data, SCHEMA)
    resolver = "203.0.113.53"
    assert (resolver in outputs["json"]) is not hide_resolvers
    assert len(pcaps) == len([f for f in office.findings if f.frames])


def test_hostile_report_passes_the_grep_test(
    hostile: AuditReport, boilerplate: str, tmp_path: Path
) -> None:
    config = RedactionConfig(key=KEY)
    _, outputs, pcaps = redact_all(hostile, config, tmp_path)
    assert_nothing_leaks(hostile, config, outputs, pcaps, boilerplate)
    assert "<script>" not in outputs["html"]


def test_redacted_report_keeps_its_shape(office: AuditReport) -> None:
    config = RedactionConfig(key=KEY)
    redacted = redact_report(office, config)
    original, result = office.to_dict(), redacted.to_dict()
    for section in ("plaintext_dns", "dot_sessions", "fallback_events", "sni_inventory"):
        assert len(result[section]) == len(original[section])
        assert [sorted(r) for r in result[section]] == [sorted(r) for r in original[section]]
    assert [f["id"] for f in result["findings"]] == [f["id"] for f in original["findings"]]
    # Pseudonyms are one-to-one: the counts of clients and sessions do not change.
    assert result["summary"] == original["summary"]
    names = {n for row in result["plaintext_dns"] for n in row["qnames"]}
    assert names == {"*.test", "*.example"}


def test_pseudonyms_are_stable_for_a_key_and_differ_across_keys(office: AuditReport) -> None:
    config = RedactionConfig(key=KEY, names=NameLevel.ALL)
    first = render(redact_report(office, config), OutputFormat.JSON)
    fresh = RedactionConfig(key=RedactionKey(bytes(range(32))), names=NameLevel.ALL)
    again = render(redact_report(office, fresh), OutputFormat.JSON)
    assert first == again
    other = redact_report(office, RedactionConfig(key=OTHER_KEY, names=NameLevel.ALL))
    mine = redact_report(office, config)
    pairs = list(zip(mine.findings, other.findings, strict=True))
    assert all(a.client != b.client for a, b in pairs if a.client)
    mine_names = {n for r in mine.sections["plaintext_dns"] for n in r["qnames"]}
    other_names = {n for r in other.sections["plaintext_dns"] for n in r["qnames"]}
    assert mine_names and not mine_names & other_names


def test_prefixes_survive_in_the_report(office: AuditReport) -> None:
    """The office clients share 198.51.100.0/24: their pseudonyms share exactly a /24 too."""
    redacted = redact_report(office, RedactionConfig(key=KEY))
    clients = {
        ipaddress.ip_address(r["client"])
        for r in redacted.sections["plaintext_dns"] + redacted.sections["dot_sessions"]
        if ":" not in r["client"]
    }
    assert len(clients) >= 5
    assert len({ipaddress.ip_network(f"{c}/24", strict=False) for c in clients}) == 1
    # ... and the ECS subnet of the /24 is that same network.
    ecs = next(f for f in redacted.findings if f.id == "DA-LEAK-006")
    subnet = ipaddress.ip_network(ecs.evidence["subnets"][0])
    assert all(c in subnet for c in clients)


def test_redaction_block(office: AuditReport) -> None:
    redacted = redact_report(office, RedactionConfig(key=KEY))
    block = redacted.redaction
    assert block is not None
    assert block["key_fingerprint"] == KEY.fingerprint
    assert KEY.material.hex() not in json.dumps(redacted.to_dict())
    assert block["names"]["level"] == "registrable"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", block["names"]["public_suffix_list"]["snapshot"])
    assert block["addresses"]["resolvers"] == "kept"
    assert block["addresses"]["pseudonymised"] >= 9  # 8 office clients and a web server
    assert block["names"]["masked"] >= 6
    again = AuditReport.from_dict(json.loads(render(redacted, OutputFormat.JSON)))
    assert again.redaction == block


def test_redacting_twice(office: AuditReport) -> None:
    config = RedactionConfig(key=KEY)
    redacted = redact_report(office, config)
    assert redact_report(redacted, config) is redacted
    with pytest.raises(RedactionError, match="already redacted"):
        redact_report(redacted, RedactionConfig(key=OTHER_KEY))
    with pytest.raises(RedactionError):
        redact_report(redacted, RedactionConfig(key=KEY, names=NameLevel.ALL))


def test_merging_needs_one_redaction(office: AuditReport) -> None:
    config = RedactionConfig(key=KEY)
    redacted = redact_report(office, config)
    assert merged_redaction([office, office]) is None
    assert merged_redaction([redacted, redacted]) == redacted.redaction
    with pytest.raises(RedactionError, match="redacted and unredacted"):
        merged_redaction([redacted, office])
    other = redact_report(office, RedactionConfig(key=OTHER_KEY))
    with pytest.raises(RedactionError, match="different keys"):
        merged_redaction([redacted, other])


def test_free_text_fields_are_rewritten(office: AuditReport) -> None:
    """Titles, notes, dedup keys and paths embed addresses and names; none survives."""
    report = copy.deepcopy(office)
    finding = report.findings[0]
    client = finding.client
    assert client
    noted = dict(finding.evidence, note=f"seen from {client} asking secret.lab.test")
    report.findings[0] = type(finding)(
        **{
            **{k: getattr(finding, k) for k in finding.__slots__},  # type: ignore[attr-defined]
            "title": f"Fallback of {client}",
            "evidence": noted,
        }
    )
    report.inputs[0]["path"] = f"/captures/{client}/office.pcap"
    report.anomaly_samples.append({"what": "odd", "frame": 1, "detail": f"{client}:5353"})
    redacted = redact_report(report, RedactionConfig(key=KEY))
    body = render(redacted, OutputFormat.JSON)
    assert client not in body
    assert "secret" not in body
    retitled = [f for f in redacted.findings if f.title.startswith("Fallback of ")]
    assert len(retitled) == 1
    pseudonym = retitled[0].client
    assert pseudonym and retitled[0].title == f"Fallback of {pseudonym}"
    assert retitled[0].evidence["note"] == f"seen from {pseudonym} asking *.test"
    assert f"/captures/{pseudonym}/office.pcap" in body
