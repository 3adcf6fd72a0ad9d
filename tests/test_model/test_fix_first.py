"""What to fix first (model/fix_first.py): groups by action, counted by machine, ordered by
severity then machines covered; one incident counted once.

Acceptance oracle: the office lab's truth (pcaps/09-office.truth.json, tests/lab/office.py):
eight machines, one of them dual-stack; two fall back after DoT is dropped or reset, two
others send plaintext DNS.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dotaudit.detect.base import Context
from dotaudit.detect.incidents import link_related
from dotaudit.model.findings import Finding, Severity, make_finding
from dotaudit.model.fix_first import ACTIONS, fix_first
from dotaudit.model.policy import Policy
from dotaudit.model.report import AuditReport
from dotaudit.pipeline import analyze
from tests.conftest import ROOT

OFFICE = ROOT / "pcaps" / "09-office.pcap"


@pytest.fixture(scope="module")
def office() -> AuditReport:
    return analyze([OFFICE], Context(), workers=1)


def truth_clients() -> dict[str, dict[str, Any]]:
    truth = json.loads((ROOT / "pcaps" / "09-office.truth.json").read_text(encoding="utf-8"))
    return {c["role"]: c for c in truth["network"]["clients"]}


def test_the_office_counts_eight_machines(office: AuditReport) -> None:
    first = office.fix_first()
    assert len(first.machines) == len(truth_clients()) == 8
    assert first.addresses == 9  # bob's IPv6 address is his, not a ninth machine
    bob = truth_clients()["bob"]
    machine = next(m for m in first.machines if bob["v4"] in m.addresses)
    assert machine.addresses == [bob["v4"], "2001:db8:1::22"]
    summary = office.summary()
    assert summary["machines"] == 8 and summary["client_addresses"] == 9
    # "7 high" findings are 4 machines: carol, dave, erin, heidi.
    assert summary["by_severity"]["high"] == 7
    assert summary["machines_by_severity"] == {
        "high": 4,
        "medium": 1,
        "low": 0,
        "info": 3,
        "none": 0,
    }


def test_the_office_groups_by_action_with_the_fallback_as_one_incident(
    office: AuditReport,
) -> None:
    clients = truth_clients()
    groups = office.fix_first().groups
    assert [(g.action.key, g.severity.label, g.machines) for g in groups] == [
        ("fallback", "high", 2),
        ("plaintext", "high", 2),
        ("multicast-names", "medium", 1),
        ("client-subnet", "medium", 1),
        ("padding", "medium", 1),
        ("tls12", "low", 1),
    ]
    fallback, plaintext = groups[0], groups[1]
    assert [i.subject for i in fallback.items] == [clients["dave"]["v4"], clients["erin"]["v4"]]
    assert [i.subject for i in plaintext.items] == [clients["carol"]["v4"], clients["heidi"]["v4"]]
    # Dave's and Erin's plaintext query and failed DoT attempt are the fallback, once.
    for item in fallback.items:
        assert sorted(f.id for f in item.folded) == ["DA-DOT-001", "DA-LEAK-001"]
    assert fallback.sentence() == "2 machines fall back to plaintext DNS when DoT fails"
    assert "GETDNS_AUTHENTICATION_REQUIRED" in fallback.action.fix
    assert "DNSOverTLS=yes" in fallback.action.fix
    counted = [f for g in groups for i in g.items for f in i.findings + i.folded]
    assert len(counted) == len({f.dedup_key for f in counted})  # nothing twice


def finding(fid: str, client: str | None, server: str = "9.9.9.9", **kw: Any) -> Finding:
    return make_finding(fid, dedup_key=f"{client}|{server}", client=client, server=server, **kw)


def test_groups_order_by_severity_then_machines_then_action() -> None:
    findings = [
        finding("DA-DOT-003", "10.0.0.1"),  # low, 1 machine
        finding("DA-LEAK-006", "10.0.0.2"),  # medium, 1 machine
        finding("DA-PAD-001", "10.0.0.3"),  # medium, 2 machines
        finding("DA-PAD-001", "10.0.0.4"),
        finding("DA-LEAK-001", "10.0.0.5"),  # high, 1 machine
    ]
    groups = fix_first(findings, {}).groups
    assert [g.action.key for g in groups] == ["plaintext", "padding", "client-subnet", "tls12"]
    # Equal severity and machines: the order of ACTIONS decides.
    tied = fix_first([finding("DA-LEAK-006", "10.0.0.2"), finding("DA-LEAK-005", "10.0.0.1")], {})
    order = [a.key for a in ACTIONS]
    assert [g.action.key for g in tied.groups] == sorted(
        ["client-subnet", "multicast-names"], key=order.index
    )


def test_a_machine_is_counted_once_per_group_whatever_its_addresses() -> None:
    sections = {
        "machines": [
            {"addresses": ["10.0.0.2", "2001:db8::2"], "macs": ["02:00:00:00:00:02"]},
        ]
    }
    findings = [finding("DA-LEAK-001", "10.0.0.2"), finding("DA-LEAK-001", "2001:db8::2", "::9")]
    first = fix_first(findings, sections)
    assert [(g.machines, len(g.items[0].findings)) for g in first.groups] == [(1, 2)]
    assert len(first.machines) == 1


def test_related_findings_fold_only_when_the_action_explains_them() -> None:
    fallback = finding("DA-FALLBACK-001", "10.0.0.2", evidence={"plaintext_servers": ["9.9.9.9"]})
    failed = finding("DA-DOT-001", "10.0.0.2")
    leak = finding("DA-LEAK-001", "10.0.0.2")
    ecs = finding("DA-LEAK-006", "10.0.0.2")  # related to the leak, explained by nobody
    groups = fix_first(link_related([fallback, failed, leak, ecs]), {}).groups
    assert [(g.action.key, [f.id for i in g.items for f in i.findings]) for g in groups] == [
        ("fallback", ["DA-FALLBACK-001"]),
        ("client-subnet", ["DA-LEAK-006"]),
    ]
    assert sorted(f.id for f in groups[0].items[0].folded) == ["DA-DOT-001", "DA-LEAK-001"]
    # Without the links (another capture's findings), nothing folds.
    unlinked = fix_first([fallback, failed, leak], {}).groups
    assert [g.action.key for g in unlinked] == ["fallback", "plaintext", "dot-unreachable"]


def test_a_fallback_made_informational_by_policy_explains_nothing() -> None:
    fallback = finding("DA-FALLBACK-001", "10.0.0.2", severity=Severity.INFO)
    leak = finding("DA-LEAK-001", "10.0.0.2")
    groups = fix_first(link_related([fallback, leak]), {}).groups
    assert [g.action.key for g in groups] == ["plaintext"]


def test_info_findings_never_need_a_fix_and_unknown_ids_keep_their_text() -> None:
    first = fix_first(
        [finding("DA-DOT-006", "10.0.0.2"), finding("DA-PROBE-001", None, "192.0.2.53:853")], {}
    )
    assert [(g.action.key, g.items[0].subject, g.machines) for g in first.groups] == [
        ("finding:DA-PROBE-001", "192.0.2.53:853", 0)
    ]
    assert first.groups[0].sentence().startswith("1 resolver has “A strict-mode client")
    assert [m.key for m in first.machines] == ["10.0.0.2"]
    assert first.by_severity()["info"] == 1 and first.to_fix() == []


def test_the_severity_policy_moves_machines_between_groups() -> None:
    """A fallback made medium by policy no longer hides its high plaintext queries."""
    policy = Policy(severity_overrides={"DA-FALLBACK-001": Severity.MEDIUM})
    report = analyze([OFFICE], Context(policy=policy), workers=1)
    groups = report.fix_first().groups
    assert [(g.action.key, g.severity.label, g.machines) for g in groups][:2] == [
        ("plaintext", "high", 4),
        ("fallback", "medium", 2),
    ]
    for item in groups[1].items:
        assert [f.id for f in item.folded] == ["DA-DOT-001"]  # medium: explained
