"""Shared fixtures: the public conformance corpus lives beside the project, never inside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "public"
IN_CI = os.environ.get("CI", "").lower() == "true"


def corpus_path(relative: str) -> Path:
    """Path of a capture in ../shared/corpus/public; skips (fails under CI) when absent."""
    path = CORPUS / relative
    if not path.exists():
        reason = f"public corpus not found at {path}"
        if IN_CI:
            pytest.fail(reason + " (CI=true: conformance tests must not skip)")
        pytest.skip(reason)
    return path


@pytest.fixture
def corpus() -> Path:
    corpus_path("MANIFEST.md")
    return CORPUS


from tests.lab.fixtures import lab, lab_capture, lab_firewall, lab_twohop  # noqa: E402, F401
