"""Every capture the fuzzer ever crashed dotaudit with, through the real entry points.

The captures live in tests/data/fuzz-regressions/, named by content hash; the README
there says what each one broke and where it was fixed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fuzz.campaign import MAX_REGRESSION_BYTES, REGRESSIONS, capture_suffix
from tests.fuzz.execute import Invocation, SubprocessRunner
from tests.fuzz.known import OPEN_CRASHES

CAPTURES = sorted(p for p in REGRESSIONS.iterdir() if p.name != "README.md")
RUNS = [
    ("analyze", False),
    ("evidence", True),
    ("events", False),
]


def run(capture: Path, target: str, policy: bool, work: Path) -> tuple[str, str, str]:
    """(kind, signature, detail) of one real run of ``capture``."""
    shutil.rmtree(work, ignore_errors=True)
    (work / "out").mkdir(parents=True)
    copy = work / capture.name  # a copy: a run must not be able to touch the original
    copy.write_bytes(capture.read_bytes())
    outcome = SubprocessRunner().run(Invocation(target, copy, work / "out", policy=policy))
    return outcome.kind, outcome.signature, outcome.detail


def test_regression_captures_are_small_and_named_by_hash() -> None:
    assert CAPTURES, "the fuzzer's crashes are kept here"
    for capture in CAPTURES:
        data = capture.read_bytes()
        assert len(data) <= MAX_REGRESSION_BYTES, capture.name
        assert capture.name.endswith(capture_suffix(data)), capture.name
    readme = (REGRESSIONS / "README.md").read_text()
    assert all(capture.name in readme for capture in CAPTURES), "say what each one broke"


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_regression_capture_does_not_crash(capture: Path, tmp_path: Path) -> None:
    for target, policy in RUNS:
        kind, signature, detail = run(capture, target, policy, tmp_path / target)
        if kind == "crash" and signature in OPEN_CRASHES:
            continue  # still open (tests/fuzz/known.py); test_open_crashes_still_crash
        assert kind != "crash", f"{target}: {signature}\n{detail}"


def test_open_crashes_still_crash(tmp_path: Path) -> None:
    """An open crash class must still show on its capture; once fixed, drop its entry.
    (A loop, not parameters: with no crash open there is nothing to skip.)"""
    for signature, known in sorted(OPEN_CRASHES.items()):
        capture = REGRESSIONS / known.capture
        assert capture in CAPTURES
        work = tmp_path / capture.name
        kind, seen, _detail = run(capture, known.target, known.target == "evidence", work)
        assert seen == signature, (
            f"{known.capture} no longer crashes with {signature!r} ({kind}: {seen}): "
            "remove it from tests/fuzz/known.py and say in the README where it was fixed"
        )
