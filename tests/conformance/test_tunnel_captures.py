"""The committed tunnel captures (tests/data/tunnels) against tshark: see tunnel_oracle.
The lab re-records them (tests/test_lab/test_tunnel_captures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dotaudit.model.events import Event
from tests.conformance.tunnel_oracle import check_capture, unwrapped_flows
from tests.lab.tunnels import CAPTURES, TunnelCapture

DATA = Path(__file__).resolve().parents[1] / "data" / "tunnels"


@pytest.fixture(scope="module")
def unwrapped(tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    return unwrapped_flows(DATA / "vxlan.pcap", tmp_path_factory.mktemp("unwrapped"))


def test_every_capture_is_committed() -> None:
    assert sorted(p.stem for p in DATA.glob("*.pcap")) == sorted(c.name for c in CAPTURES)


@pytest.mark.parametrize("spec", CAPTURES, ids=[c.name for c in CAPTURES])
def test_capture_matches_tshark(spec: TunnelCapture, unwrapped: list[Event]) -> None:
    check_capture(DATA / f"{spec.name}.pcap", spec, unwrapped)


def test_the_pseudowire_oracle_does_not_guess_from_inner_macs(
    unwrapped: list[Event], tmp_path: Path
) -> None:
    """A lab run's random inner MAC whose bytes 2-4 form a registered OUI (here Intel's
    00:1b:21) once made tshark's heuristic read its frames as Ethernet without a
    control word, and the lab test failed on DNS tshark no longer saw."""
    spec = next(c for c in CAPTURES if c.name == "mpls-pw")
    capture = (DATA / "mpls-pw.pcap").read_bytes()
    inner_mac = bytes.fromhex("92ddd3b2e0f2")
    assert capture.count(inner_mac) > 10
    rewritten = tmp_path / "mpls-pw.pcap"
    rewritten.write_bytes(capture.replace(inner_mac, bytes.fromhex("92dd001b21f2")))
    check_capture(rewritten, spec, unwrapped)
