"""The evidence plan (dotaudit/model/evidence.py): finding number -> file name -> frames.

Oracle: the numbering of ``AuditReport.sorted_findings()``, which the HTML links use too.
"""

from __future__ import annotations

from dotaudit.model.evidence import evidence_name, plan_evidence
from dotaudit.model.findings import make_finding


def test_names_are_numbered_and_safe() -> None:
    assert evidence_name(1, "DA-LEAK-001") == "001-DA-LEAK-001.pcap"
    assert evidence_name(12, "../x y") == "012-.._x_y.pcap"
    assert "/" not in evidence_name(3, "a/b\\c")


def test_plan_keeps_every_findings_number_and_shares_frames() -> None:
    findings = [
        make_finding("DA-LEAK-001", dedup_key="a", frames=(3, 4), file="one.pcap"),
        make_finding("DA-DOT-001", dedup_key="b"),  # no frames: no file, but number 2
        make_finding("DA-FALLBACK-001", dedup_key="c", frames=(4, 9), file="one.pcap"),
        make_finding("DA-LEAK-002", dedup_key="d", frames=(1,), file="two.pcap"),
    ]
    plan = plan_evidence(findings)
    first, third, fourth = (
        "001-DA-LEAK-001.pcap",
        "003-DA-FALLBACK-001.pcap",
        "004-DA-LEAK-002.pcap",
    )
    assert plan.names == [first, third, fourth]
    assert plan.frames == {
        "one.pcap": {3: [first], 4: [first, third], 9: [third]},
        "two.pcap": {1: [fourth]},
    }


def test_findings_without_a_capture_need_no_file() -> None:
    plan = plan_evidence([make_finding("DA-PROBE-001", dedup_key="x", frames=(1,))])
    assert plan.names == [] and plan.frames == {}
