"""Every detector ``analyze`` runs, in this order. Adding a detector: one new file plus
one line here (``docs/development.md``, "Adding a detector")."""

from __future__ import annotations

from dotaudit.detect.base import Detector
from dotaudit.detect.doh_doq import DohDoqDetector
from dotaudit.detect.dot_cert import DotCertDetector
from dotaudit.detect.dot_session_outcomes import DotSessionOutcomesDetector
from dotaudit.detect.ech import EchDetector
from dotaudit.detect.ecs import EcsDetector
from dotaudit.detect.fallback import FallbackDetector
from dotaudit.detect.leak import PlaintextLeakDetector
from dotaudit.detect.local_names import LocalNamesDetector
from dotaudit.detect.machines import MachineDetector
from dotaudit.detect.padding import PaddingDetector
from dotaudit.detect.sni import SniDetector
from dotaudit.detect.split_leak import SplitLeakDetector

DETECTORS: tuple[type[Detector], ...] = (
    PlaintextLeakDetector,
    LocalNamesDetector,
    EcsDetector,
    DotSessionOutcomesDetector,
    FallbackDetector,
    SplitLeakDetector,
    PaddingDetector,
    DotCertDetector,
    DohDoqDetector,
    SniDetector,
    EchDetector,
    MachineDetector,
)
