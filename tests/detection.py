"""Detectors as ``analyze`` runs them, on events a test builds (tests/factories.py).

``detect`` runs every registered detector through ``dotaudit.detect.runner`` (session
stage, routing by event type, policy applied once), as ``analyze`` does for the events
of a capture. Tests that judge a verdict go through here rather than through
one detector class, so they keep judging the same thing when detectors are reorganised;
tests/test_detect/test_detection_route.py checks that this route gives what
``analyze`` gives on a real capture.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dotaudit.detect.base import Context
from dotaudit.detect.runner import run_detectors
from dotaudit.model.events import Event
from dotaudit.model.findings import Finding
from dotaudit.model.policy import Policy


@dataclass
class Detected:
    findings: list[Finding]
    sections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    caps: dict[str, int] = field(default_factory=dict)
    """What the caps cut, by the anomaly name the report counts it under."""

    def ids(self) -> list[str]:
        return sorted(f.id for f in self.findings)

    def only(self, finding_id: str) -> Finding:
        (found,) = [f for f in self.findings if f.id == finding_id]
        return found

    def of(self, finding_id: str) -> list[Finding]:
        return [f for f in self.findings if f.id == finding_id]


def detect(
    events: Iterable[Event], policy: Policy | None = None, *, sections: bool = True
) -> Detected:
    """Findings (and, unless ``sections`` is false, report sections) of ``events``."""
    detection = run_detectors(events, Context(policy=policy or Policy()))
    return Detected(detection.findings, detection.sections if sections else {}, detection.caps)
