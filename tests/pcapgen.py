"""Small synthetic captures for tests, built with scapy (tests only; never the product).

Each builder returns a list of scapy packets with explicit timestamps; ``write`` saves
them as a pcap. Scenarios mirror what real clients do (see the lab for real ones).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scapy.all import DNS, DNSQR, IP, TCP, UDP, Ether, wrpcap
from scapy.layers.inet import ICMP

CLIENT = "192.0.2.10"
RESOLVER = "198.51.100.53"
MAC_C = "02:00:00:00:00:01"
MAC_S = "02:00:00:00:00:02"


def _stamp(packet: Any, ts: float) -> Any:
    packet.time = ts
    return packet


def dns_udp_exchange(
    qname: str,
    ts: float,
    *,
    client: str = CLIENT,
    server: str = RESOLVER,
    sport: int = 40000,
    qid: int = 1,
) -> list[Any]:
    query = Ether(src=MAC_C, dst=MAC_S) / IP(src=client, dst=server) / UDP(sport=sport, dport=53)
    query = query / DNS(id=qid, rd=1, qd=DNSQR(qname=qname))
    answer = Ether(src=MAC_S, dst=MAC_C) / IP(src=server, dst=client) / UDP(sport=53, dport=sport)
    answer = answer / DNS(id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname=qname))
    return [_stamp(query, ts), _stamp(answer, ts + 0.01)]


def dot_syn_unanswered(
    ts: float, *, client: str = CLIENT, server: str = RESOLVER, sport: int = 50000
) -> list[Any]:
    """A SYN to 853 and its retransmits (1 s, 3 s): what a DROP rule looks like."""
    packets = []
    for delay in (0.0, 1.0, 3.0):
        syn = Ether(src=MAC_C, dst=MAC_S) / IP(src=client, dst=server)
        syn = syn / TCP(sport=sport, dport=853, flags="S", seq=1000)
        packets.append(_stamp(syn, ts + delay))
    return packets


def dot_syn_reset(
    ts: float,
    *,
    client: str = CLIENT,
    server: str = RESOLVER,
    sport: int = 50001,
    rst_after: float = 0.001,
) -> list[Any]:
    syn = Ether(src=MAC_C, dst=MAC_S) / IP(src=client, dst=server)
    syn = syn / TCP(sport=sport, dport=853, flags="S", seq=1000)
    rst = Ether(src=MAC_S, dst=MAC_C) / IP(src=server, dst=client)
    rst = rst / TCP(sport=853, dport=sport, flags="RA", seq=0, ack=1001)
    return [_stamp(syn, ts), _stamp(rst, ts + rst_after)]


def dot_syn_icmp(
    ts: float, *, client: str = CLIENT, server: str = RESOLVER, sport: int = 50002
) -> list[Any]:
    syn = IP(src=client, dst=server) / TCP(sport=sport, dport=853, flags="S", seq=1000)
    icmp = Ether(src=MAC_S, dst=MAC_C) / IP(src=server, dst=client) / ICMP(type=3, code=13)
    icmp = icmp / bytes(syn)[:28]
    return [_stamp(Ether(src=MAC_C, dst=MAC_S) / syn, ts), _stamp(icmp, ts + 0.001)]


def write(path: Path, packets: list[Any]) -> Path:
    packets = sorted(packets, key=lambda p: float(p.time))
    wrpcap(str(path), packets)
    return path


def fallback_capture(path: Path, failure: str = "drop") -> Path:
    """A client tries DoT, fails (drop/reset/icmp), then asks the same name over UDP/53."""
    builders = {"drop": dot_syn_unanswered, "reset": dot_syn_reset, "icmp": dot_syn_icmp}
    packets = builders[failure](100.0)
    packets += dns_udp_exchange("fallback.example", 102.0)
    return write(path, packets)


def plaintext_capture(path: Path, names: list[str], *, client: str = CLIENT) -> Path:
    packets: list[Any] = []
    for i, name in enumerate(names):
        packets += dns_udp_exchange(name, 10.0 + i, client=client, qid=i + 1, sport=40000 + i)
    return write(path, packets)
