"""pytest fixtures for the real lab (exported from tests/conftest.py).

- ``lab`` (session): loopback services, see ``tests.lab.lab``; ``lab["padded"]`` etc.
- ``lab_firewall`` (session): namespace with 853 open/drop/reset/icmp/closed.
- ``lab_twohop`` (session): client/router/server namespaces, router resets 853.
- ``lab_capture`` (function): start a tcpdump on lo (or in a namespace) into tmp_path.
- ``lab_hostile`` (session): client/router/internet namespaces where the router injects
  resets on 853, redirects port 53 and filters DoH by SNI (tests/lab/hostile_net.py).
- ``lab_dropping`` (session): client/router namespaces where the router drops everything.
- ``dhcp_leases`` (session): lease files ISC dhclient wrote from a dnsmasq offering DNR.

Not root or a binary missing: the tests skip with the reason. Under CI=true a lab that
cannot start fails loudly instead.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.lab import dhcp
from tests.lab.capture import Capture, start_capture
from tests.lab.hostile_net import DroppingNet, HostileNet, start_dropping, start_hostile
from tests.lab.lab import Lab, missing_prerequisite, start_lab
from tests.lab.netns import FirewallLab, TwoHop, start_firewall, start_twohop
from tests.lab.procs import LabError

IN_CI = os.environ.get("CI", "").lower() == "true"


def lab_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"lab cannot start under CI=true: {reason}", pytrace=False)
    pytest.skip(f"lab unavailable: {reason}")


LAB_LOCK = Path("/tmp/dotaudit-lab.lock")
"""The lab binds fixed 127.53.x.y addresses and captures on lo: two test runs on one
machine (two checkouts, say) would collide, so a run holds this lock while its lab lives."""


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    reason = missing_prerequisite()
    if reason:
        lab_unavailable(reason)
    with LAB_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits for another run's lab to close
        try:
            started = start_lab()
        except LabError as exc:
            lab_unavailable(str(exc))
            raise  # unreachable: lab_unavailable always raises
        with started:
            yield started


@pytest.fixture(scope="session")
def lab_firewall(lab: Lab) -> FirewallLab:
    try:
        return start_firewall(lab.pm, lab.pki, lab.base)
    except LabError as exc:
        lab_unavailable(str(exc))
        raise


@pytest.fixture(scope="session")
def lab_twohop(lab: Lab) -> TwoHop:
    try:
        return start_twohop(lab.pm, lab.pki, lab.base)
    except LabError as exc:
        lab_unavailable(str(exc))
        raise


@pytest.fixture
def lab_capture(lab: Lab, tmp_path: Path) -> Iterator[Callable[..., Capture]]:
    """``lab_capture(name, bpf="", interface="lo", netns=None)`` -> a running Capture."""
    running: list[Capture] = []

    def start(name: str, bpf: str = "", interface: str = "lo", netns: str | None = None) -> Capture:
        cap = start_capture(lab.pm, tmp_path / f"{name}.pcap", interface, bpf, netns)
        running.append(cap)
        return cap

    yield start
    for cap in running:
        if cap.proc in lab.pm.procs:
            lab.pm.stop(cap.proc)


@pytest.fixture(scope="session")
def lab_hostile(lab: Lab) -> HostileNet:
    try:
        return start_hostile(lab.pm, lab.pki, lab.base)
    except LabError as exc:
        lab_unavailable(str(exc))
        raise


@pytest.fixture(scope="session")
def lab_dropping(lab: Lab) -> DroppingNet:
    try:
        return start_dropping(lab.pm)
    except LabError as exc:
        lab_unavailable(str(exc))
        raise


@pytest.fixture(scope="session")
def dhcp_leases(lab: Lab) -> dhcp.DhcpLeases:
    reason = dhcp.missing()
    if reason:
        lab_unavailable(reason)
    try:
        return dhcp.take_leases(lab.pm, lab.base)
    except LabError as exc:
        lab_unavailable(str(exc))
        raise
