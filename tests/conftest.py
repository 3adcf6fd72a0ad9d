"""Shared fixtures: the public conformance corpus lives beside the project, never inside it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.ci_guard import (  # noqa: F401  (hooks: the CI skip guard)
    IN_CI,
    pytest_make_collect_report,
    pytest_runtest_makereport,
)

# Shared checks outside test modules still get pytest's assertion messages.
pytest.register_assert_rewrite("tests.conformance.tunnel_oracle")

ROOT = Path(__file__).resolve().parent.parent

LAB_NETWORKS = "127.0.0.0/8,::1/128,192.0.2.0/24,198.51.100.0/24,203.0.113.0/24,2001:db8::/32"
"""Network rule for tests, held by the prober itself: its transport refuses any address
outside loopback and the documentation prefixes the lab's namespaces use. Set before any
test runs and inherited by every dotaudit the tests start, so that a test that forgets
``--known`` or ``--resolv-conf`` meets a refusal, not the internet."""
os.environ["DOTAUDIT_ALLOWED_NETWORKS"] = LAB_NETWORKS


def _shared_dir() -> Path:
    """``../shared`` beside this checkout; in a linked git worktree (whose ``.git`` file
    reads ``gitdir: MAIN/.git/worktrees/NAME``), beside the main checkout if not here."""
    beside = ROOT.parent / "shared"
    git = ROOT / ".git"
    if beside.exists() or not git.is_file():
        return beside
    text = git.read_text(encoding="utf-8", errors="replace").strip()
    if not text.startswith("gitdir:"):
        return beside
    main = Path(text.removeprefix("gitdir:").strip()).parent.parent.parent
    candidate = main.parent / "shared"
    return candidate if candidate.exists() else beside


CORPUS = _shared_dir() / "corpus" / "public"

# Hypothesis profiles (docs/development.md). "ci" (chosen under CI=true) replays the same
# examples on every run, so a CI result is repeatable; "dev" (any other run) and "fuzz"
# (`make fuzz`, budgets scaled by tests/fuzzing.py) draw fresh random examples each time
# and keep failures in .hypothesis/ to replay them. `--hypothesis-profile NAME` wins.
# Each starts from Hypothesis' own defaults, whatever it chose on import (it picks a
# profile of its own when it sees a CI variable). A loaded machine must not fail a test
# by slowness: deadlines and the too_slow health check are off everywhere.
_BASE = settings.get_profile("default")
_CALM = {"deadline": None, "print_blob": True, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", parent=_BASE, derandomize=True, database=None, **_CALM)
settings.register_profile("dev", parent=_BASE, derandomize=False, **_CALM)
settings.register_profile("fuzz", parent=_BASE, derandomize=False, **_CALM)


def pytest_configure(config: pytest.Config) -> None:
    chosen = config.getoption("hypothesis_profile", None)
    settings.load_profile(chosen or ("ci" if IN_CI else "dev"))
    # A shell without job control starts a background command (`make test &`) with SIGINT
    # ignored, and an ignored signal stays ignored across exec: every dotaudit the tests
    # start would then shrug off the Ctrl-C the interrupt tests send, and finish with 0
    # or 1 instead of 130. A handled signal is reset to the default by exec, so the
    # children get Python's own handler again.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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


@pytest.fixture(scope="session")
def mixed_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The benchmark's mix (bulk TLS, QUIC, DNS over UDP/TCP, DoT, mDNS, IPv6, VLAN),
    long enough for flows to expire in sweeps while others run."""
    out = tmp_path_factory.mktemp("mixed") / "mixed.pcap"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gen_capture.py"), "--packets", "30000",
         "-o", str(out)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return out


@pytest.fixture
def corpus() -> Path:
    corpus_path("MANIFEST.md")
    return CORPUS


from tests.lab.fixtures import (  # noqa: E402, F401
    dhcp_leases,
    lab,
    lab_capture,
    lab_dropping,
    lab_firewall,
    lab_hostile,
    lab_twohop,
)
