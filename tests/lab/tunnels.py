"""Tunnel captures made from real packets (``tests/data/tunnels``).

One capture is made whole by the kernel: two namespaces joined by a veth pair, a VXLAN
tunnel between them (``ip link add ... type vxlan``), Unbound in one, kdig in the other
asking over UDP, TCP and DNS over TLS (IPv4 and IPv6), tcpdump on the outer veth.

This machine's kernel has VXLAN but no GRE, ERSPAN, Geneve, IPIP, SIT, ip6tnl, GTP, MPLS
or PPP (see ``/proc/config.gz``; ``ip link add ... type gre`` says "Unknown device
type"), and pppd needs the kernel's PPP driver. So every other capture wraps the very
inner frames that capture carried (real kdig and Unbound packets) in headers built byte
by byte from their specifications (``tests/lab/encap.py``), and tshark, decoding them
independently, is the oracle: the conformance test checks that tshark reads every
expected layer and that dotaudit reports the same DNS names and SNIs as tshark.

Regenerate with ``.venv/bin/python -m tests.lab.make_tunnel_pcaps`` (root, the lab's
packages); the lab test ``tests/test_lab/test_tunnel_captures.py`` does the same in a
temporary directory on every lab run.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.lab import encap
from tests.lab.capture import start_capture
from tests.lab.clients import kdig
from tests.lab.netns import Netns, veth
from tests.lab.pki import HOSTNAME, Pki
from tests.lab.ports import wait_tcp
from tests.lab.procs import LabError, Proc, ProcessManager
from tests.lab.unbound import UnboundVariant, write_instance
from tests.test_capture.capwrite import pcap

VNI = 42
UNDERLAY = ("192.0.2.1", "192.0.2.2")
INNER4 = ("10.42.0.1", "10.42.0.2")
INNER6 = ("fd42::1", "fd42::2")
OUTER4 = ("192.0.2.1", "192.0.2.2")
OUTER6 = ("2001:db8:a::1", "2001:db8:a::2")
COLLECTOR = "192.0.2.9"
"""Where the ERSPAN captures' mirror sessions deliver (one direction only, as SPAN does)."""

Record = tuple[float, bytes]
Inner = tuple[float, bytes, bool]
"""(timestamp, inner Ethernet frame, sent by the tunnel's client side)."""


@dataclass
class VxlanPair:
    client: Netns
    server: Netns
    unbound: Proc


def start_vxlan_pair(pm: ProcessManager, pki: Pki, base: Path) -> VxlanPair:
    """Two namespaces, a veth underlay, VXLAN VNI 42 on UDP 4789 over it, Unbound (53
    and 853) on the server's tunnel addresses."""
    client, server = Netns.create(pm, "vxc"), Netns.create(pm, "vxs")
    veth(client, "eth0", server, "eth0")
    for ns, side in ((client, 0), (server, 1)):
        local, remote = UNDERLAY[side], UNDERLAY[1 - side]
        ns.run(["ip", "addr", "add", f"{local}/24", "dev", "eth0"])
        ns.run(
            ["ip", "link", "add", "vxlan0", "type", "vxlan", "id", str(VNI), "local", local,
             "remote", remote, "dstport", "4789", "dev", "eth0"]
        )  # fmt: skip
        ns.sysctl("net.ipv6.conf.vxlan0.accept_ra", "0")
        ns.run(["ip", "link", "set", "vxlan0", "up"])
        ns.run(["ip", "addr", "add", f"{INNER4[side]}/24", "dev", "vxlan0"])
        ns.run(["ip", "-6", "addr", "add", f"{INNER6[side]}/64", "dev", "vxlan0", "nodad"])
    variant = UnboundVariant("vxlan", (INNER4[1], INNER6[1]), netns=server.name)
    conf, env = write_instance(variant, pki, base)
    proc = server.start("unbound", ["unbound", "-d", "-c", str(conf)], env)
    # Readiness is checked from the server's own side: probes through the tunnel would
    # leave their closing segments in the capture.
    for address in (INNER4[1], INNER6[1]):
        for port in (53, 853):
            wait_tcp(address, port, 10.0, alive=proc.running, netns=server.name)
    return VxlanPair(client, server, proc)


EXCHANGES: tuple[tuple[str, str, str, str], ...] = (
    # (server, transport, qname, qtype)
    (INNER4[1], "udp", "www.lab.test", "A"),
    (INNER4[1], "tcp", "mail.lab.test", "MX"),
    (INNER6[1], "udp", "www.lab.test", "AAAA"),
    (INNER4[1], "dot", "secret.lab.test", "A"),
    (INNER6[1], "dot", "intranet.lab.test", "A"),
)


def record_vxlan(pair: VxlanPair, pm: ProcessManager, ca: Path, path: Path) -> Path:
    """kdig's exchanges through the tunnel, captured on the client's outer veth."""
    cap = start_capture(pm, path, "eth0", "udp port 4789", pair.client.name, name="tcpdump-vxlan")
    try:
        for server, transport, qname, qtype in EXCHANGES:
            dot = transport == "dot"
            result = kdig(
                server,
                (qname, qtype),
                netns=pair.client.name,
                port=853 if dot else 53,
                tls=dot,
                ca=ca if dot else None,
                hostname=HOSTNAME if dot else None,
                padding=False,
                tcp=transport == "tcp",
            )
            if not result.ok:
                raise LabError(f"kdig {qname} over {transport} through VXLAN: {result.stdout}")
    finally:
        cap.stop()
    return path


# -- the wrapped captures ---------------------------------------------------------------


def read_pcap(path: Path) -> list[Record]:
    """(timestamp, frame) of a little- or big-endian microsecond pcap (what tcpdump
    writes here)."""
    data = path.read_bytes()
    magic = data[:4]
    endian = "<" if magic == b"\xd4\xc3\xb2\xa1" else ">"
    if struct.unpack(endian + "I", magic)[0] != 0xA1B2C3D4:
        raise LabError(f"{path}: not a microsecond pcap")
    records: list[Record] = []
    pos = 24
    while pos + 16 <= len(data):
        sec, usec, caplen, _orig = struct.unpack_from(endian + "IIII", data, pos)
        records.append((sec + usec / 1e6, data[pos + 16 : pos + 16 + caplen]))
        pos += 16 + caplen
    return records


def vxlan_inner(records: list[Record]) -> list[Inner]:
    """The Ethernet frames the VXLAN capture carried (outer Ethernet, IPv4, UDP and the
    8-byte VXLAN header taken off), each with its direction: by the outer source address,
    since ARP and neighbour discovery frames have no inner address to go by."""
    inner: list[Inner] = []
    for ts, frame in records:
        ihl = (frame[14] & 15) * 4
        up = frame[14 + 12 : 14 + 16] == encap.addr(UNDERLAY[0])
        inner.append((ts, frame[14 + ihl + 8 + 8 :], up))
    return inner


def _ethertype(frame: bytes) -> int:
    return int(struct.unpack_from("!H", frame, 12)[0])


def _is_ip(frame: bytes, version: int | None = None) -> bool:
    kind = _ethertype(frame)
    if version is None:
        return kind in (0x0800, 0x86DD)
    return kind == (0x0800 if version == 4 else 0x86DD)


def _outer(from_client: bool, pair: tuple[str, str]) -> tuple[str, str]:
    return pair if from_client else (pair[1], pair[0])


def _eth_ip(payload: bytes, src: str, dst: str, proto: int) -> bytes:
    return encap.ethernet(
        encap.ip(payload, src, dst, proto), encap.ETH_IPV6 if ":" in src else encap.ETH_IPV4
    )


def _wrap_ip(frames: list[Inner], version: int | None, outer: tuple[str, str], proto: int,
             header: Callable[[bytes, bool], bytes]) -> list[Record]:  # fmt: skip
    """The IP packets of ``frames`` (of one version, if given) in ``header`` in IP."""
    out: list[Record] = []
    for ts, frame, up in frames:
        if _is_ip(frame, version):
            src, dst = _outer(up, outer)
            out.append((ts, _eth_ip(header(frame[14:], up), src, dst, proto)))
    return out


def _gre_ip(frames: list[Inner]) -> list[Record]:
    def header(packet: bytes, up: bool) -> bytes:
        protocol = encap.ETH_IPV4 if packet[0] >> 4 == 4 else encap.ETH_IPV6
        return encap.gre(packet, protocol, key=7)

    return _wrap_ip(frames, None, OUTER4, 47, header)


def _gretap6(frames: list[Inner]) -> list[Record]:
    out: list[Record] = []
    for i, (ts, frame, up) in enumerate(frames):
        src, dst = _outer(up, OUTER6)
        body = encap.gre(frame, encap.ETH_TEB, sequence=i, with_checksum=True)
        out.append((ts, _eth_ip(body, src, dst, 47)))
    return out


def _erspan(kind: int) -> Callable[[list[Inner]], list[Record]]:
    def wrap(frames: list[Inner]) -> list[Record]:
        out: list[Record] = []
        for i, (ts, frame, _up) in enumerate(frames):
            if kind == 1:
                body = encap.gre(frame, encap.GRE_ERSPAN)
            elif kind == 2:
                body = encap.gre(encap.erspan2(frame, 100, index=3), encap.GRE_ERSPAN, sequence=i)
            else:
                platform = struct.pack("!II", 0x0800_0000, i) if i % 2 else b""
                inner = encap.erspan3(frame, 200, int(ts * 1e6) & 0xFFFFFFFF, 5, platform)
                body = encap.gre(inner, encap.GRE_ERSPAN_3, sequence=i)
            out.append((ts, _eth_ip(body, OUTER4[0], COLLECTOR, 47)))
        return out

    return wrap


def _geneve(frames: list[Inner]) -> list[Record]:
    option = encap.geneve_option(0x0102, 0x80, b"\x00\x00\x00\x2a")
    out: list[Record] = []
    for i, (ts, frame, up) in enumerate(frames):
        src, dst = _outer(up, OUTER4)
        body = encap.geneve(frame, 4242, encap.ETH_TEB, option)
        out.append((ts, _eth_ip(encap.udp(body, src, dst, 40000 + i % 7, 6081), src, dst, 17)))
    return out


def _gtpu(frames: list[Inner]) -> list[Record]:
    out: list[Record] = []
    packets = [(ts, frame[14:], up) for ts, frame, up in frames if _is_ip(frame)]
    for i, (ts, packet, up) in enumerate(packets):
        src, dst = _outer(up, OUTER4)
        # TS 38.415 PDU Session Container: PDU type (0 downlink, 1 uplink), then the QFI.
        container = bytes([0x10 if up else 0x00, 9])
        body = encap.gtpu(
            packet, 0x1001 if up else 0x2002, sequence=i,
            extensions=[(encap.PDU_SESSION_CONTAINER, container)],
        )  # fmt: skip
        out.append((ts, _eth_ip(encap.udp(body, src, dst, 2152, 2152), src, dst, 17)))
    # An echo request: GTP-U signalling, not a packet of a user.
    echo = encap.gtpu(b"", 0, message=1, sequence=77)
    last = out[-1][0] + 0.001
    out.append((last, _eth_ip(encap.udp(echo, OUTER4[0], OUTER4[1], 2152, 2152), *OUTER4, 17)))
    return out


def _ip_in_ip(inner_version: int, outer: tuple[str, str]) -> Callable[[list[Inner]], list[Record]]:
    proto = 4 if inner_version == 4 else 41

    def wrap(frames: list[Inner]) -> list[Record]:
        return _wrap_ip(frames, inner_version, outer, proto, lambda packet, up: packet)

    return wrap


def _mpls(frames: list[Inner]) -> list[Record]:
    out: list[Record] = []
    for ts, frame, up in frames:
        if not _is_ip(frame):
            continue
        labels = (1000, 2000) if up else (3000,)  # label stacks differ per direction
        out.append((ts, encap.ethernet(encap.mpls(frame[14:], labels), encap.ETH_MPLS)))
    return out


PW_LABELS = {True: (5000, 6000), False: (7000, 8000)}
"""The pseudowire's label stacks by direction (upstream or not); the bottom label is
the pseudowire's own."""


def _mpls_pw(frames: list[Inner]) -> list[Record]:
    out: list[Record] = []
    for i, (ts, frame, up) in enumerate(frames):
        labels = PW_LABELS[up]
        body = encap.mpls(encap.pw_control_word(i + 1) + frame, labels)
        out.append((ts, encap.ethernet(body, encap.ETH_MPLS)))
    return out


PPPOE_SESSION = 0x1234
PPPOE_TAGS = ((encap.ETH_QINQ, 100), (encap.ETH_VLAN, 200))


def _pppoe(frames: list[Inner]) -> list[Record]:
    def tagged(payload: bytes, ethertype: int) -> bytes:
        return encap.MAC_B + encap.MAC_A + encap.vlan_tags(payload, ethertype, PPPOE_TAGS)

    first = frames[0][0] - 0.002
    out: list[Record] = [
        (first, tagged(encap.pppoe_padi(b"dotaudit"), encap.ETH_PPPOE_DISCOVERY)),
        (first + 0.001, tagged(
            encap.pppoe_session(PPPOE_SESSION, 0xC021, encap.lcp_echo_request(1, 0x01020304)),
            encap.ETH_PPPOE_SESSION,
        )),
    ]  # fmt: skip
    for ts, frame, _up in frames:
        if not _is_ip(frame):
            continue
        ppp = 0x0021 if _is_ip(frame, 4) else 0x0057
        body = encap.pppoe_session(PPPOE_SESSION, ppp, frame[14:])
        out.append((ts, tagged(body, encap.ETH_PPPOE_SESSION)))
    return out


NESTED_INNER = ("10.1.1.1", "10.1.1.2")


def _nested(frames: list[Inner]) -> list[Record]:
    out: list[Record] = []
    for ts, frame, up in frames:
        gsrc, gdst = _outer(up, NESTED_INNER)
        gre_frame = _eth_ip(encap.gre(frame, encap.ETH_TEB, key=1), gsrc, gdst, 47)
        src, dst = _outer(up, OUTER4)
        body = encap.udp(encap.vxlan(gre_frame, 7), src, dst, 50000, 4789)
        out.append((ts, _eth_ip(body, src, dst, 17)))
    return out


@dataclass(frozen=True)
class TunnelCapture:
    name: str
    made_by: str
    """"kernel" (recorded whole) or "wrapped" (real inner frames, headers per spec)."""
    tunnels: tuple[str, ...]
    """dotaudit's ``tunnel`` texts its DNS and TLS events carry."""
    tshark_layers: str
    """What tshark's ``frame.protocols`` of every inner DNS/TLS frame contains."""
    counted: tuple[tuple[str, str], ...]
    """(encapsulation, tshark display filter): the report counts as many packets with
    that layer as tshark finds frames matching the filter."""
    not_ip: tuple[tuple[str, str], ...] = (("arp", "arp"),)
    """(``not_ip`` tally name, tshark display filter), likewise."""
    wrap: Callable[[list[Inner]], list[Record]] | None = None
    inner_version: int | None = None
    """The one IP version the capture carries, if it carries only one."""
    tshark_decode: tuple[str, ...] = ()
    """tshark ``-d`` rules telling it what the capture carries where it would otherwise
    guess from the frames' contents."""


def _pair(a: str, b: str) -> str:
    return f"{a}-{b}"


_ERSPAN_LAYERS = "gre:erspan:eth:ethertype:ip"
CAPTURES: tuple[TunnelCapture, ...] = (
    TunnelCapture(
        "vxlan",
        "kernel",
        (f"vxlan:vni={VNI}@{_pair(*UNDERLAY)}",),
        "udp:vxlan:eth:ethertype:ip",
        (("vxlan", "vxlan"),),
    ),
    TunnelCapture(
        "gre",
        "wrapped",
        (f"gre:key=7@{_pair(*OUTER4)}",),
        "ip:gre:ip",
        (("gre", "gre"),),
        (),
        _gre_ip,
    ),
    TunnelCapture(
        "gretap6",
        "wrapped",
        (f"gre@{_pair(*OUTER6)}",),
        "ipv6:gre:eth:ethertype:ip",
        (("gre", "gre"),),
        wrap=_gretap6,
    ),
    TunnelCapture(
        "erspan1",
        "wrapped",
        (f"erspan1@{_pair(OUTER4[0], COLLECTOR)}",),
        _ERSPAN_LAYERS,
        (("erspan1", "erspan"),),
        wrap=_erspan(1),
    ),
    TunnelCapture(
        "erspan2",
        "wrapped",
        (f"erspan2:session=100@{_pair(OUTER4[0], COLLECTOR)}",),
        _ERSPAN_LAYERS,
        (("erspan2", "erspan.version == 1"),),
        wrap=_erspan(2),
    ),
    TunnelCapture(
        "erspan3",
        "wrapped",
        (f"erspan3:session=200@{_pair(OUTER4[0], COLLECTOR)}",),
        _ERSPAN_LAYERS,
        (("erspan3", "erspan.version == 2"),),
        wrap=_erspan(3),
    ),
    TunnelCapture(
        "geneve",
        "wrapped",
        (f"geneve:vni=4242@{_pair(*OUTER4)}",),
        "udp:geneve:eth:ethertype:ip",
        (("geneve", "geneve"),),
        wrap=_geneve,
    ),
    TunnelCapture(
        "gtpu",
        "wrapped",
        (f"gtpu@{_pair(*OUTER4)}",),
        "udp:gtp:ip",
        (("gtpu", "gtp"),),
        (("gtpu-signalling", "gtp.message == 1"),),
        _gtpu,
    ),
    TunnelCapture(
        "ipip",
        "wrapped",
        (f"ipip@{_pair(*OUTER4)}",),
        "ip:ip",
        (("ipip", "ip.proto == 4"),),
        (),
        _ip_in_ip(4, OUTER4),
        4,
    ),
    TunnelCapture(
        "6in4",
        "wrapped",
        (f"6in4@{_pair(*OUTER4)}",),
        "ip:ipv6",
        (("6in4", "ip.proto == 41"),),
        (),
        _ip_in_ip(6, OUTER4),
        6,
    ),
    TunnelCapture(
        "4in6",
        "wrapped",
        (f"4in6@{_pair(*OUTER6)}",),
        "ipv6:ip",
        (("4in6", "ipv6.nxt == 4"),),
        (),
        _ip_in_ip(4, OUTER6),
        4,
    ),
    TunnelCapture(
        "6in6",
        "wrapped",
        (f"6in6@{_pair(*OUTER6)}",),
        "ipv6:ipv6",
        (("6in6", "ipv6.nxt == 41"),),
        (),
        _ip_in_ip(6, OUTER6),
        6,
    ),
    TunnelCapture(
        "mpls", "wrapped", ("mpls",), "eth:ethertype:mpls:ip", (("mpls", "mpls"),), (), _mpls
    ),
    TunnelCapture(
        "mpls-pw",
        "wrapped",
        ("mpls>pw",),
        "mpls:eth:ethertype:ip",
        # Every frame carries the control word, and tshark is told so. Left to its
        # heuristic it takes a frame for Ethernet without one whenever the inner
        # destination MAC's bytes 2-4 (the lab's MACs are random) happen to be a
        # registered OUI, and loses that frame's DNS.
        (("mpls", "mpls"), ("pw", "pwethcw")),
        wrap=_mpls_pw,
        tshark_decode=(
            f"mpls.label=={PW_LABELS[True][-1]},pwethcw",
            f"mpls.label=={PW_LABELS[False][-1]},pwethcw",
        ),
    ),
    TunnelCapture(
        "pppoe-qinq",
        "wrapped",
        (f"pppoe:session={PPPOE_SESSION}",),
        "ieee8021ad:ethertype:vlan:ethertype:pppoes:ppp:ip",
        (("pppoe", "pppoes"),),
        (("pppoe-discovery", "pppoed"), ("ppp-lcp", "lcp")),
        _pppoe,
    ),
    TunnelCapture(
        "nested",
        "wrapped",
        (f"vxlan:vni=7@{_pair(*OUTER4)}>gre:key=1@{_pair(*NESTED_INNER)}",),
        "vxlan:eth:ethertype:ip:gre:eth:ethertype:ip",
        (("vxlan", "vxlan"), ("gre", "gre")),
        wrap=_nested,
    ),
)


def make_captures(vxlan_pcap: Path, out_dir: Path) -> dict[str, Path]:
    """Every capture of :data:`CAPTURES` in ``out_dir``, from the recorded VXLAN one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = vxlan_inner(read_pcap(vxlan_pcap))
    paths: dict[str, Path] = {}
    for capture in CAPTURES:
        path = out_dir / f"{capture.name}.pcap"
        if capture.wrap is None:
            path.write_bytes(vxlan_pcap.read_bytes())
        else:
            path.write_bytes(pcap(capture.wrap(frames)))
        paths[capture.name] = path
    return paths
