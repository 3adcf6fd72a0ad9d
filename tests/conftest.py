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
