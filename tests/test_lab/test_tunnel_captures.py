"""The tunnel captures re-recorded in the lab on every run (a real kernel VXLAN between
two namespaces; the other encapsulations wrap its inner frames) and checked against
tshark like the committed ones (tests/conformance/test_tunnel_captures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dotaudit.model.events import Event
from tests.conformance.tunnel_oracle import check_capture, unwrapped_flows
from tests.lab.lab import Lab
from tests.lab.procs import LabError
from tests.lab.tunnels import (
    CAPTURES,
    TunnelCapture,
    make_captures,
    record_vxlan,
    start_vxlan_pair,
)

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def recorded(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Event]]:
    work = tmp_path_factory.mktemp("tunnels")
    try:
        pair = start_vxlan_pair(lab.pm, lab.pki, lab.base)
    except LabError as exc:
        pytest.fail(f"VXLAN namespaces: {exc}")
    vxlan = record_vxlan(pair, lab.pm, lab.ca, work / "recorded.pcap")
    lab.pm.stop(pair.unbound)
    paths = make_captures(vxlan, work / "out")
    assert sorted(paths) == sorted(c.name for c in CAPTURES)
    return work / "out", unwrapped_flows(vxlan, work)


@pytest.mark.parametrize("spec", CAPTURES, ids=[c.name for c in CAPTURES])
def test_recorded_capture_matches_tshark(
    spec: TunnelCapture, recorded: tuple[Path, list[Event]]
) -> None:
    out, unwrapped = recorded
    check_capture(out / f"{spec.name}.pcap", spec, unwrapped)
