"""tests/detection.py routes events to the detectors as `analyze` does.

Oracle: `dotaudit.pipeline.analyze` on the committed sample captures: the same events
through tests/detection.py must give the same findings and sections.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dotaudit.detect.base import Context
from dotaudit.model.policy import Policy
from dotaudit.pipeline import CaptureRun, analyze
from tests.conftest import ROOT
from tests.detection import detect

CAPTURES = sorted((ROOT / "pcaps").glob("*.pcap"))


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_detect_matches_analyze(capture: Path) -> None:
    policy = Policy(treat_loopback_as_network=True)
    report = analyze([capture], Context(policy=policy), workers=1)
    detected = detect(CaptureRun(capture).events(), policy)
    assert report.findings, "every sample capture has findings"
    assert [f.to_dict() for f in detected.findings] == [f.to_dict() for f in report.findings]
    assert detected.sections == report.sections
