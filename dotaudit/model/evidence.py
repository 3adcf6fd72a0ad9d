"""The evidence plan: which frames of which capture belong in which finding's pcap.

``analyze --evidence DIR`` writes one small pcap per finding that names frames
(``capture/evidence.py`` copies them); the HTML report links each finding to its file.
Both number the findings in report order, so the plan and the names are made here once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from dotaudit.model.findings import Finding

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

EVIDENCE_MARKER = ".dotaudit-evidence"
"""The file that marks a directory as written by ``analyze --evidence``: directory scans
skip it (and say so), so that evidence pcaps are never read back as inputs."""
EVIDENCE_FILE = re.compile(r"\d{3,}-[A-Za-z0-9._-]+\.pcap")
"""The names :func:`evidence_name` gives."""


def evidence_name(index: int, finding_id: str) -> str:
    """The file name of the ``index``-th finding's evidence pcap (1-based, report order)."""
    return f"{index:03d}-{_UNSAFE.sub('_', finding_id)}.pcap"


@dataclass
class EvidencePlan:
    """Evidence files to write, and the frames that go into each.

    ``frames[capture][frame]`` lists the names of every evidence file that wants that frame
    of that capture; ``names`` lists the files in report order.
    """

    names: list[str] = field(default_factory=list)
    frames: dict[str, dict[int, list[str]]] = field(default_factory=dict)


def plan_evidence(findings: Sequence[Finding]) -> EvidencePlan:
    """The plan for findings in report order (``AuditReport.sorted_findings()``): findings
    without a capture file or frames get no file, but keep their number."""
    plan = EvidencePlan()
    for index, finding in enumerate(findings, 1):
        if finding.file and finding.frames:
            name = evidence_name(index, finding.id)
            plan.names.append(name)
            by_frame = plan.frames.setdefault(finding.file, {})
            for frame in finding.frames:
                by_frame.setdefault(frame, []).append(name)
    return plan
