"""Crash classes the fuzzer has found whose fix belongs to work still open elsewhere.

A class listed here is reported by every campaign but fails neither the bounded run in
``make test`` nor the regression test; ``tests/test_fuzz/test_regressions.py`` checks that
its capture still crashes that way, so the entry must go once the fix lands. Signatures
are :func:`tests.fuzz.execute.traceback_signature` strings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpenCrash:
    reason: str
    capture: str
    """A capture in tests/data/fuzz-regressions/ that shows it."""
    target: str
    """The run that shows it (tests.fuzz.execute.TARGETS)."""


OPEN_CRASHES: dict[str, OpenCrash] = {}
