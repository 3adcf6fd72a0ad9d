"""Every detector ``analyze`` runs. Adding a detector: one new file plus one line here."""

from __future__ import annotations

from dotaudit.detect.base import Detector
from dotaudit.detect.dot_session import DotSessionDetector
from dotaudit.detect.fallback import FallbackDetector
from dotaudit.detect.leak import PlaintextLeakDetector
from dotaudit.detect.split_leak import SplitLeakDetector

DETECTORS: tuple[type[Detector], ...] = (
    PlaintextLeakDetector,
    DotSessionDetector,
    FallbackDetector,
    SplitLeakDetector,
)
