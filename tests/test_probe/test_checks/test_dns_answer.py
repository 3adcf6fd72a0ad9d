"""dns.answer: the padded Unbound answers the lab's name over DoT. Oracle: the lab zone
(tests/lab/zone.py: www.lab.test A 198.51.100.80)."""

from __future__ import annotations

import pytest

from dotaudit.probe.runner import TargetResult
from tests.test_probe.lab_probe import evidence, status

pytestmark = pytest.mark.lab


def test_padded_unbound_answers(padded_audit: TargetResult) -> None:
    assert status(padded_audit, "dns.answer") == "pass"
    assert evidence(padded_audit, "dns.answer")["answer"] == ["A 198.51.100.80"]
