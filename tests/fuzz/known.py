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


OPEN_CRASHES: dict[str, OpenCrash] = {
    "struct.error in dotaudit/capture/evidence.py:write_pcap": OpenCrash(
        "the evidence writer (classic pcap, 32-bit seconds) cannot hold every timestamp the "
        "reader accepts (after 2106, before 1970, or a pcap sub-second field of a second or "
        "more carried past 2**32 s); it must fall back to pcapng with nanosecond resolution "
        "and leave no temporary file: left to the evidence writer's rework",
        capture="3224d1ba72ff352b.pcapng",
        target="evidence",
    ),
}
