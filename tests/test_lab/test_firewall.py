"""The firewalled namespace and the two-hop path behave as the issue states, checked on
the wire (tcpdump inside the namespace, read back with scapy) and by kdig's timing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP
from scapy.utils import rdpcap

from tests.lab.capture import Capture
from tests.lab.clients import kdig
from tests.lab.lab import Lab
from tests.lab.netns import FirewallLab, TwoHop
from tests.lab.pki import HOSTNAME

pytestmark = pytest.mark.lab


def _capture_attempt(
    lab: Lab, fw: FirewallLab, lab_capture: Callable[..., Capture], state: str
) -> tuple[list[IP], float]:
    addr = fw.addresses[state]
    cap = lab_capture(f"fw-{state}", bpf=f"host {addr}", netns=fw.ns.name)
    res = kdig(addr, "www.lab.test", ca=lab.ca, hostname=HOSTNAME, netns=fw.ns.name, timeout=2)
    path: Path = cap.stop()
    assert (state == "open") == res.ok, res.stdout + res.stderr
    return [p[IP] for p in rdpcap(str(path)) if IP in p], res.elapsed


def _tcp_853(packets: list[IP]) -> list[TCP]:
    return [p[TCP] for p in packets if TCP in p and 853 in (p[TCP].sport, p[TCP].dport)]


def test_drop_shows_syn_and_retransmit(
    lab: Lab, lab_firewall: FirewallLab, lab_capture: Callable[..., Capture]
) -> None:
    packets, elapsed = _capture_attempt(lab, lab_firewall, lab_capture, "drop")
    tcp = _tcp_853(packets)
    assert all(t.flags == "S" and t.dport == 853 for t in tcp)
    assert len(tcp) >= 2  # the SYN and at least one retransmit, nothing back
    assert len({t.seq for t in tcp}) == 1
    assert 1.8 < elapsed < 3.5  # kdig gives up after its 2 s timeout


@pytest.mark.parametrize("state", ["reset", "closed"])
def test_reset_and_closed_look_identical(
    lab: Lab, lab_firewall: FirewallLab, lab_capture: Callable[..., Capture], state: str
) -> None:
    packets, elapsed = _capture_attempt(lab, lab_firewall, lab_capture, state)
    tcp = _tcp_853(packets)
    assert [str(t.flags) for t in tcp] == ["S", "RA"]
    assert tcp[1].sport == 853 and tcp[1].ack == tcp[0].seq + 1
    assert elapsed < 0.5  # kdig gives up at once (the issue measured ~10 ms)


def test_icmp_admin_prohibited(
    lab: Lab, lab_firewall: FirewallLab, lab_capture: Callable[..., Capture]
) -> None:
    packets, elapsed = _capture_attempt(lab, lab_firewall, lab_capture, "icmp")
    icmp = [p for p in packets if ICMP in p]
    assert icmp and (icmp[0][ICMP].type, icmp[0][ICMP].code) == (3, 13)
    assert not [t for t in _tcp_853(packets) if t.sport == 853]
    assert elapsed < 0.5


def test_open_completes_handshake(
    lab: Lab, lab_firewall: FirewallLab, lab_capture: Callable[..., Capture]
) -> None:
    packets, _ = _capture_attempt(lab, lab_firewall, lab_capture, "open")
    assert "SA" in [str(t.flags) for t in _tcp_853(packets)]


@pytest.mark.parametrize("state", ["open", "drop", "reset", "icmp", "closed"])
def test_port_53_open_everywhere(lab_firewall: FirewallLab, state: str) -> None:
    addr = lab_firewall.addresses[state]
    assert kdig(addr, "www.lab.test", port=53, tls=False, netns=lab_firewall.ns.name).ok
    assert kdig(addr, "www.lab.test", port=53, tls=False, tcp=True, netns=lab_firewall.ns.name).ok


def test_twohop_injected_reset_has_router_ttl(
    lab: Lab, lab_twohop: TwoHop, lab_capture: Callable[..., Capture]
) -> None:
    hop = lab_twohop
    cap = lab_capture("twohop", interface=hop.client_if, netns=hop.client.name)
    tls = kdig(hop.server_addr, "www.lab.test", ca=lab.ca, hostname=HOSTNAME, netns=hop.client.name)
    plain = kdig(hop.server_addr, "www.lab.test", port=53, tls=False, tcp=True,
                 netns=hop.client.name)  # fmt: skip
    assert not tls.ok and plain.ok
    packets = [p[IP] for p in rdpcap(str(cap.stop())) if IP in p]
    from_server = [p for p in packets if p.src == hop.server_addr]
    rst = [p for p in from_server if TCP in p and p[TCP].sport == 853 and "R" in str(p[TCP].flags)]
    real = [p for p in from_server if TCP in p and p[TCP].sport == 53]
    assert rst and real
    assert {p.ttl for p in rst} == {64}  # made by the router, one hop away
    assert {p.ttl for p in real} == {63}  # the server's own, decremented by the router
