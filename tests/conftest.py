"""Shared fixtures: the public conformance corpus lives beside the project, never inside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Shared checks outside test modules still get pytest's assertion messages.
pytest.register_assert_rewrite("tests.conformance.tunnel_oracle")

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


def _never_resolve_link_addresses() -> None:
    """Network rule: building a scapy Ether() without a destination MAC would make scapy
    ARP (or neighbour-solicit) for it on the host's real network. Tests build packets
    for files, never to send, so every unresolved destination becomes broadcast."""
    try:
        import scapy.layers.l2  # noqa: F401  (registers conf.neighbor)
        from scapy.config import conf
    except ImportError:
        return
    conf.neighbor.resolve = lambda *args, **kwargs: "ff:ff:ff:ff:ff:ff"


_never_resolve_link_addresses()


@pytest.fixture
def corpus() -> Path:
    corpus_path("MANIFEST.md")
    return CORPUS


from tests.lab.fixtures import lab, lab_capture, lab_firewall, lab_twohop  # noqa: E402, F401


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Under CI=true nothing may skip for a missing tool, lab or corpus: a skip there means
    a missing install step that a green run would hide. Only skips whose reason starts
    with "not applicable:" (the situation a test guards against cannot arise) stay."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else ""
        if "not applicable:" not in reason:
            report.outcome = "failed"
            report.longrepr = f"skipped under CI=true: {reason}"
