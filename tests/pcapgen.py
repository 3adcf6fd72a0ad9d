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


# -- captures that cannot be read whole ------------------------------------------------------

PCAP_HEADER = 24
RECORD_HEADER = 16


def damaged_capture(path: Path, damage: str) -> Path:
    """A capture of two plaintext DNS exchanges (a high leak where it can be read),
    damaged one way:

    - ``link-105``: the link type says 802.11 (105), which dotaudit does not decode:
      every record read, none decodable;
    - ``corrupt-first``: the first record claims 10 MB of captured bytes: nothing read;
    - ``empty``: the file header alone (tcpdump killed before the first packet);
    - ``cut``: the last record cut short (tcpdump killed mid-write): partial;
    - ``corrupt-later``: the third record claims 10 MB: partial, corrupt.
    """
    plaintext_capture(path, ["first.example", "second.example"])
    data = bytearray(path.read_bytes())
    first = PCAP_HEADER
    third = first + 2 * RECORD_HEADER + 2 * int.from_bytes(data[first + 8 : first + 12], "little")
    if damage == "link-105":
        data[20:24] = (105).to_bytes(4, "little")
    elif damage == "corrupt-first":
        data[first + 8 : first + 16] = (10_000_000).to_bytes(4, "little") * 2
    elif damage == "empty":
        del data[PCAP_HEADER:]
    elif damage == "cut":
        del data[-10:]
    elif damage == "corrupt-later":
        data[third + 8 : third + 16] = (10_000_000).to_bytes(4, "little") * 2
    else:
        raise ValueError(damage)
    path.write_bytes(bytes(data))
    return path


def distinct_clients_flood(path: Path, clients: int) -> Path:
    """One UDP/53 query from each of ``clients`` addresses (10.x.y.z), all in the same
    second: a flow per client for the whole capture. Written with struct (scapy would
    take minutes)."""
    import struct

    ether = bytes.fromhex("0200000000020200000000010800")
    question = (
        bytes.fromhex("000101000001000000000000") + b"\x04leak\x07example\x00\x00\x01\x00\x01"
    )
    udp_length = 8 + len(question)
    records = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for n in range(clients):
        client = bytes([10, (n >> 16) & 255, (n >> 8) & 255, n & 255])
        udp = struct.pack("!HHHH", 1024 + n % 60000, 53, udp_length, 0) + question
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_length, 0, 0, 64, 17, 0, client,
                         bytes([198, 51, 100, 53]))  # fmt: skip
        frame = ether + ip + udp
        records.append(struct.pack("<IIII", 1000, n % 1_000_000, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(records))
    return path
