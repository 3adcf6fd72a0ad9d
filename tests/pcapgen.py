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


# -- the link: ARP, NDP, DHCP and the frames hosts send ------------------------------------

ROUTER_MAC = "02:00:00:00:00:fe"
HOST_A = ("02:00:00:00:00:0a", "192.0.2.10", "2001:db8:1::a")
"""A dual-stack host: its IPv4 address in ARP, its IPv6 address in NDP."""
HOST_B = ("02:00:00:00:00:0b", "192.0.2.11", None)
HOST_DHCP = ("02:00:00:00:00:0c", "192.0.2.12", None)
"""Gets its address by DHCP (host name "printer-3f", client id a DUID)."""
HOST_SLAAC_MAC = "02:00:00:00:00:0d"
REMOTE = ("203.0.113.53", "203.0.113.54", "2001:db8:53::53")
"""Servers beyond the router: their packets carry the router's MAC."""


def eui64(mac: str, prefix: str = "2001:db8:1::") -> str:
    """The SLAAC address of ``mac`` in ``prefix``/64 (RFC 4291 appendix A)."""
    import ipaddress

    raw = bytes.fromhex(mac.replace(":", ""))
    iid = bytes([raw[0] ^ 0x02]) + raw[1:3] + b"\xff\xfe" + raw[3:]
    return str(ipaddress.IPv6Address(ipaddress.IPv6Address(prefix).packed[:8] + iid))


def link_capture(path: Path) -> Path:
    """Every way the capture shows who uses which address, and the traps: a router whose
    MAC fronts remote servers, an ARP probe, duplicate address detection, an NA to a
    multicast target, a forwarded NS (hop limit 64), an OFFER that is not an ACK."""
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet6 import (
        ICMPv6ND_NA,
        ICMPv6ND_NS,
        ICMPv6ND_RA,
        ICMPv6NDOptDstLLAddr,
        ICMPv6NDOptPrefixInfo,
        ICMPv6NDOptSrcLLAddr,
        IPv6,
    )
    from scapy.layers.l2 import ARP

    mac_a, v4_a, v6_a = HOST_A
    mac_b, v4_b, _ = HOST_B
    mac_d, v4_d, _ = HOST_DHCP
    slaac = eui64(HOST_SLAAC_MAC)
    t = 10.0
    packets: list[Any] = []

    def add(packet: Any) -> None:
        nonlocal t
        t += 0.01
        packets.append(_stamp(packet, t))

    bcast = "ff:ff:ff:ff:ff:ff"
    add(Ether(src=mac_a, dst=bcast) / ARP(op=1, hwsrc=mac_a, psrc=v4_a, pdst="192.0.2.1"))
    add(Ether(src=ROUTER_MAC, dst=mac_a) / ARP(op=2, hwsrc=ROUTER_MAC, psrc="192.0.2.1",
                                             hwdst=mac_a, pdst=v4_a))  # fmt: skip
    add(Ether(src=mac_b, dst=bcast) / ARP(op=1, hwsrc=mac_b, psrc=v4_b, pdst=v4_b))  # gratuitous
    add(Ether(src=mac_b, dst=bcast) / ARP(op=1, hwsrc=mac_b, psrc="0.0.0.0", pdst=v4_b))  # probe
    # NDP: A solicits the router from its global address; the router answers and advertises.
    solicited = "ff02::1:ff00:1"
    add(Ether(src=mac_a, dst="33:33:ff:00:00:01") / IPv6(src=v6_a, dst=solicited, hlim=255)
        / ICMPv6ND_NS(tgt="2001:db8:1::1") / ICMPv6NDOptSrcLLAddr(lladdr=mac_a))  # fmt: skip
    add(Ether(src=ROUTER_MAC, dst=mac_a) / IPv6(src="2001:db8:1::1", dst=v6_a, hlim=255)
        / ICMPv6ND_NA(tgt="2001:db8:1::1", R=1, S=1, O=1)
        / ICMPv6NDOptDstLLAddr(lladdr=ROUTER_MAC))  # fmt: skip
    all_nodes = Ether(src=ROUTER_MAC, dst="33:33:00:00:00:01") / IPv6(
        src="fe80::fe", dst="ff02::1", hlim=255
    )
    prefix = ICMPv6NDOptPrefixInfo(prefix="2001:db8:1::", prefixlen=64, L=1, A=1)
    add(all_nodes / ICMPv6ND_RA() / ICMPv6NDOptSrcLLAddr(lladdr=ROUTER_MAC) / prefix)
    # Traps: duplicate address detection from ::, a forwarded NS, an NA to a multicast target.
    add(Ether(src=mac_b, dst="33:33:ff:00:00:0b") / IPv6(src="::", dst="ff02::1:ff00:b", hlim=255)
        / ICMPv6ND_NS(tgt="2001:db8:1::b") / ICMPv6NDOptSrcLLAddr(lladdr=mac_b))  # fmt: skip
    add(Ether(src=mac_b, dst=ROUTER_MAC) / IPv6(src="2001:db8:9::b", dst="2001:db8:1::1", hlim=64)
        / ICMPv6ND_NS(tgt="2001:db8:1::1") / ICMPv6NDOptSrcLLAddr(lladdr=mac_b))  # fmt: skip
    add(Ether(src=mac_b, dst="33:33:00:00:00:01") / IPv6(src="fe80::b", dst="ff02::1", hlim=255)
        / ICMPv6ND_NA(tgt="ff02::1") / ICMPv6NDOptDstLLAddr(lladdr=mac_b))  # fmt: skip
    # DHCP: DISCOVER, OFFER (not a binding), REQUEST, ACK with mask and host name.
    client_id = b"\xff\x00\x00\x00\x01\x00\x01\x00\x01\x2a\x2b\x2c\x2d"  # IAID + DUID-LLT
    chaddr = bytes.fromhex(mac_d.replace(":", ""))

    def dhcp(op: int, kind: str, yiaddr: str, src: str, dst: str, options: list[Any]) -> Any:
        sport, dport = (68, 67) if op == 1 else (67, 68)
        return (
            Ether(src=mac_d if op == 1 else ROUTER_MAC, dst=bcast)
            / IP(src=src, dst=dst)
            / UDP(sport=sport, dport=dport)
            / BOOTP(op=op, chaddr=chaddr, yiaddr=yiaddr, xid=0x1234)
            / DHCP(options=[("message-type", kind), *options, "end"])
        )

    ident = [("client_id", client_id), ("hostname", b"printer-3f")]
    add(dhcp(1, "discover", "0.0.0.0", "0.0.0.0", "255.255.255.255", ident))
    add(dhcp(2, "offer", "192.0.2.99", "192.0.2.1", "255.255.255.255",
             [("subnet_mask", "255.255.255.0")]))  # fmt: skip
    add(dhcp(1, "request", "0.0.0.0", "0.0.0.0", "255.255.255.255",
             [("requested_addr", v4_d), *ident]))  # fmt: skip
    add(dhcp(2, "ack", v4_d, "192.0.2.1", "255.255.255.255",
             [("subnet_mask", "255.255.255.0"), ("router", "192.0.2.1")]))  # fmt: skip
    # Traffic: A over IPv4 and IPv6, the SLAAC host, B, and the servers' answers through
    # the router's MAC.
    out_a, in_a = Ether(src=mac_a, dst=ROUTER_MAC), Ether(src=ROUTER_MAC, dst=mac_a)
    add(out_a / IP(src=v4_a, dst=REMOTE[0]) / TCP(sport=40001, dport=853, flags="S"))
    add(in_a / IP(src=REMOTE[0], dst=v4_a) / TCP(sport=853, dport=40001, flags="SA"))

    def query(qid: int, name: str, sport: int) -> Any:
        return UDP(sport=sport, dport=53) / DNS(id=qid, qd=DNSQR(qname=name))

    def answer(qid: int, name: str, dport: int) -> Any:
        return UDP(sport=53, dport=dport) / DNS(id=qid, qr=1, qd=DNSQR(qname=name))

    add(out_a / IPv6(src=v6_a, dst=REMOTE[2]) / query(1, "a.example", 40002))
    add(in_a / IPv6(src=REMOTE[2], dst=v6_a) / answer(1, "a.example", 40002))
    slaac_out = Ether(src=HOST_SLAAC_MAC, dst=ROUTER_MAC)
    add(slaac_out / IPv6(src=slaac, dst=REMOTE[2]) / query(2, "s.example", 40003))
    add(
        Ether(src=mac_b, dst=ROUTER_MAC)
        / IP(src=v4_b, dst=REMOTE[1])
        / query(3, "b.example", 40004)
    )
    add(
        Ether(src=ROUTER_MAC, dst=mac_b)
        / IP(src=REMOTE[1], dst=v4_b)
        / answer(3, "b.example", 40004)
    )
    add(
        Ether(src=mac_d, dst=ROUTER_MAC)
        / IP(src=v4_d, dst=REMOTE[1])
        / query(4, "d.example", 40005)
    )
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
