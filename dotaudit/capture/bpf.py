"""BPF programs: the bypass filter a pass over a file installs, and the prefilter
expression for live captures.

**Bypass program** (files). libpcap runs it in C on every record; it rejects exactly
the records the flow table would ignore: well-formed TCP/UDP packets (IPv4 without
options and not fragmented, IPv6 without extension headers; Ethernet with at most one
802.1Q tag, raw IP, Linux cooked, BSD loopback) of a *bypassed* flow, except TCP
segments with SYN, FIN or RST. Everything else is admitted, so a record the decoder
would report as malformed, a fragment, an ICMP error, a tunnel or a frame of any other
shape is always read. A record captured short of its wire length is admitted too (the
program cannot see how much was captured, so it only trusts records whose wire length
is within the file's snapshot length).

The bypassed flows sit in fixed slots (``IPV4_SLOTS``/``IPV6_SLOTS`` per bucket, buckets
by the low bits of ``sport ^ dport``): a packet costs about 60 instructions whatever the
number of flows, and changing a slot rewrites a few constants in place, never the
program. When a bucket is full, the flow bypassed longest ago gives up its slot (most
likely a flow that went quiet without a FIN, waiting for its idle probe).

**Prefilter expression** (live captures, :func:`prefilter_expression`): what the
detectors need when packets cannot be read twice, compiled by libpcap's own compiler.
"""

from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass

from dotaudit.capture.libpcap import BpfInsn, BpfProgram
from dotaudit.capture.packet import UDP_TUNNEL_PORTS

# Instruction classes and fields (bpf.h).
LD, LDX, ST, STX, ALU, JMP, RET, MISC = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
W, H, B = 0x00, 0x08, 0x10
IMM, ABS, IND, MEM, LEN = 0x00, 0x20, 0x40, 0x60, 0x80
ADD, SUB, AND, RSH, XOR = 0x00, 0x10, 0x50, 0x70, 0xA0
JA, JEQ, JGT, JGE, JSET = 0x00, 0x10, 0x20, 0x30, 0x40
K, X = 0x00, 0x08
TAX = MISC | 0x00

_INSN = struct.Struct("=HBBI")
"""``struct bpf_insn`` in the host's byte order."""

ADMIT = 262144
"""Return value that keeps a record (libpcap only tests for non-zero in files)."""
SKIP = 0

BUCKET_BITS = 7
BUCKETS = 1 << BUCKET_BITS
IPV4_SLOTS = 8
"""Per bucket: 1024 IPv4 flows in all."""
IPV6_SLOTS = 4
"""Per bucket: 512 IPv6 flows in all."""
EMPTY = 0xFFFFFFFF
"""Key of a free slot: ``sport ^ dport`` is a 16-bit value, so never this."""

ETHERNET, RAW, IPV4_ONLY, IPV6_ONLY, SLL, SLL2, NULL, LOOP = 1, 101, 228, 229, 113, 276, 0, 108
LINK_TYPES = frozenset({ETHERNET, RAW, 12, 14, IPV4_ONLY, IPV6_ONLY, SLL, SLL2, NULL, LOOP})
"""Link types whose frames the bypass program can read (others: a plain pass)."""


class _Asm:
    """A forward-only assembler: conditional jumps to labels within 255 instructions,
    ``ja`` anywhere ahead."""

    def __init__(self) -> None:
        self.code: list[list[object]] = []  # [code, jt, jf, k], jt/jf/k may be labels
        self.labels: dict[str, int] = {}

    def here(self) -> int:
        return len(self.code)

    def label(self, name: str) -> None:
        if name in self.labels:
            raise ValueError(f"label {name} twice")
        self.labels[name] = len(self.code)

    def op(self, code: int, k: int = 0) -> int:
        self.code.append([code, 0, 0, k])
        return len(self.code) - 1

    def jump(self, code: int, k: int, jt: str | int, jf: str | int) -> int:
        """``jt``/``jf``: a label, or 0 for the next instruction."""
        self.code.append([code, jt, jf, k])
        return len(self.code) - 1

    def ja(self, target: str) -> None:
        self.code.append([JMP | JA, 0, 0, target])

    def ret(self, value: int) -> None:
        self.op(RET | K, value)

    def assemble(self) -> list[tuple[int, int, int, int]]:
        out = []
        for pc, (code, jt, jf, k) in enumerate(self.code):
            if isinstance(k, str):
                k = self.labels[k] - pc - 1
            jt = self._offset(pc, jt)
            jf = self._offset(pc, jf)
            out.append((int(code), jt, jf, int(k)))  # type: ignore[call-overload]
        return out

    def _offset(self, pc: int, target: object) -> int:
        if isinstance(target, str):
            delta = self.labels[target] - pc - 1
            if not 0 <= delta <= 255:
                raise ValueError(f"jump from {pc} to {target} out of range ({delta})")
            return delta
        assert isinstance(target, int)
        return target


@dataclass(frozen=True)
class FlowKey:
    """A flow as the program matches it (both directions)."""

    proto: int
    client: bytes
    cport: int
    server: bytes
    sport: int

    @property
    def bucket_key(self) -> int:
        return self.cport ^ self.sport


class BypassProgram:
    """The bypass filter for one link type, with slots to fill (see the module doc)."""

    def __init__(self, linktype: int, snaplen: int) -> None:
        if linktype not in LINK_TYPES:
            raise ValueError(f"link type {linktype} not supported by the bypass program")
        self.linktype = linktype
        self.snaplen = snaplen
        # The head (link layer, IP checks, the key) is assembled; the tables are laid out
        # by arithmetic and their identical comparison blocks are copied, which keeps
        # building a program of some 15,000 instructions cheap.
        head = _Asm()
        self._build_head(head)
        size = len(head.code)
        table4 = _Table(size, IPV4_SLOTS, _check_block(v6=False))
        table6 = _Table(table4.end, IPV6_SLOTS, _check_block(v6=True))
        head.labels["table4"] = table4.start
        head.labels["table6"] = table6.start
        packed = _pack(head.assemble()) + table4.code + table6.code
        self.length = len(packed) // _INSN.size
        self._insns = (BpfInsn * self.length).from_buffer_copy(packed)
        self.program = BpfProgram(self.length, ctypes.cast(self._insns, ctypes.POINTER(BpfInsn)))
        self._tables = (table4, table6)
        self._used4: dict[FlowKey, int] = {}
        self._used6: dict[FlowKey, int] = {}
        self._held4: list[list[FlowKey]] = [[] for _ in range(BUCKETS)]
        self._held6: list[list[FlowKey]] = [[] for _ in range(BUCKETS)]

    # -- slots ---------------------------------------------------------------------

    def add(self, flow: FlowKey) -> FlowKey | None:
        """Skip ``flow``'s non-control packets from now on. Returns the flow that gave
        up its slot for it, if its bucket was full (that flow's packets are read again,
        as if it were not bypassed)."""
        v6 = len(flow.client) == 16
        used = self._used6 if v6 else self._used4
        if flow in used:
            return None
        per = IPV6_SLOTS if v6 else IPV4_SLOTS
        bucket = flow.bucket_key & (BUCKETS - 1)
        held = (self._held6 if v6 else self._held4)[bucket]  # oldest first
        evicted = None
        if len(held) == per:
            evicted = held.pop(0)
            index = used.pop(evicted)
        else:
            taken = {used[key] for key in held}
            index = next(i for i in range(bucket * per, bucket * per + per) if i not in taken)
        held.append(flow)
        used[flow] = index
        self._fill(self._tables[v6], index, flow, v6)
        return evicted

    def remove(self, flow: FlowKey) -> None:
        v6 = len(flow.client) == 16
        used = self._used6 if v6 else self._used4
        index = used.pop(flow, None)
        if index is not None:
            (self._held6 if v6 else self._held4)[flow.bucket_key & (BUCKETS - 1)].remove(flow)
            self._insns[self._tables[v6].key_at(index)].k = EMPTY

    def flows(self) -> set[FlowKey]:
        return set(self._used4) | set(self._used6)

    def _fill(self, table: _Table, index: int, flow: FlowKey, v6: bool) -> None:
        insns = self._insns
        at = table.block_at(index)
        fields = _FIELDS6 if v6 else _FIELDS4
        insns[at + fields["proto"]].k = flow.proto
        insns[at + fields["ports_fwd"]].k = (flow.cport << 16) | flow.sport
        insns[at + fields["ports_rev"]].k = (flow.sport << 16) | flow.cport
        for i in range(4 if v6 else 1):
            a = int.from_bytes(flow.client[4 * i : 4 * i + 4], "big")
            b = int.from_bytes(flow.server[4 * i : 4 * i + 4], "big")
            insns[at + fields[f"fwd_src{i}"]].k = a
            insns[at + fields[f"fwd_dst{i}"]].k = b
            insns[at + fields[f"rev_src{i}"]].k = b
            insns[at + fields[f"rev_dst{i}"]].k = a
        insns[table.key_at(index)].k = flow.bucket_key

    # -- code ----------------------------------------------------------------------

    def _build_head(self, asm: _Asm) -> None:
        # Frames longer than the snapshot length were cut when captured: admitted, the
        # decoder reports them.
        asm.op(LD | W | LEN)
        asm.jump(JMP | JGT | K, self.snaplen, "admit", 0)
        self._link(asm)
        self._ipv4(asm)
        self._ipv6(asm)
        asm.label("admit")
        asm.ret(ADMIT)

    def _link(self, asm: _Asm) -> None:
        """Leave X = offset of the IP header and jump to "v4" or "v6"."""
        lt = self.linktype
        if lt == ETHERNET:
            asm.op(LD | H | ABS, 12)
            asm.jump(JMP | JEQ | K, 0x0800, "eth4", 0)
            asm.jump(JMP | JEQ | K, 0x86DD, "eth6", 0)
            asm.jump(JMP | JEQ | K, 0x8100, 0, "admit")
            asm.op(LD | H | ABS, 16)  # one 802.1Q tag (the decoder's fast path takes one)
            asm.jump(JMP | JEQ | K, 0x0800, "vlan4", 0)
            asm.jump(JMP | JEQ | K, 0x86DD, "vlan6", "admit")
            for name, offset, family in (
                ("eth4", 14, "v4"),
                ("eth6", 14, "v6"),
                ("vlan4", 18, "v4"),
                ("vlan6", 18, "v6"),
            ):
                asm.label(name)
                asm.op(LDX | W | IMM, offset)
                asm.ja(family)
            return
        if lt in (SLL, SLL2):
            offset = 16 if lt == SLL else 20
            asm.op(LD | H | ABS, 14 if lt == SLL else 0)
            asm.op(LDX | W | IMM, offset)
            asm.jump(JMP | JEQ | K, 0x0800, "v4", 0)
            asm.jump(JMP | JEQ | K, 0x86DD, "v6", "admit")
            return
        offset = 4 if lt in (NULL, LOOP) else 0
        asm.op(LDX | W | IMM, offset)
        if lt in (NULL, LOOP):
            # The address family: network order (LOOP), or either order (NULL, written in
            # the capturing host's order), as the decoder reads it.
            asm.op(LD | W | ABS, 0)
            v4: tuple[int, ...] = (2,) if lt == LOOP else (2, 0x02000000)
            v6: tuple[int, ...] = (24, 28, 30)
            if lt == NULL:
                v6 += (0x18000000, 0x1C000000, 0x1E000000)
            for value in v4:
                asm.jump(JMP | JEQ | K, value, "v4", 0)
            for value in v6[:-1]:
                asm.jump(JMP | JEQ | K, value, "v6", 0)
            asm.jump(JMP | JEQ | K, v6[-1], "v6", "admit")
            return
        if lt == IPV4_ONLY:
            asm.ja("v4")
            return
        if lt == IPV6_ONLY:
            asm.ja("v6")
            return
        asm.op(LD | B | ABS, 0)  # raw IP: the version nibble
        asm.op(ALU | AND | K, 0xF0)
        asm.jump(JMP | JEQ | K, 0x40, "v4", 0)
        asm.jump(JMP | JEQ | K, 0x60, "v6", "admit")

    def _ipv4(self, asm: _Asm) -> None:
        """The decoder's fast-path conditions (IPv4 without options, not a fragment,
        lengths within the frame), then the key ``sport ^ dport`` into the table."""
        asm.label("v4")
        asm.op(STX, 0)  # M0: IP offset
        asm.op(LD | W | LEN)
        asm.op(ALU | SUB | X)
        asm.op(ST, 1)  # M1: bytes from the IP header on
        asm.jump(JMP | JGE | K, 40, 0, "admit")
        asm.op(LD | B | IND, 0)
        asm.jump(JMP | JEQ | K, 0x45, 0, "admit")
        asm.op(LD | H | IND, 6)
        asm.jump(JMP | JSET | K, 0x3FFF, "admit", 0)
        asm.op(LD | H | IND, 2)
        asm.op(ST, 2)  # M2: IP total length
        asm.op(TAX)
        asm.op(LD | MEM, 1)
        asm.jump(JMP | JGE | X, 0, 0, "admit")  # total length within the frame
        asm.op(LDX | W | MEM, 0)
        asm.op(LD | B | IND, 9)
        asm.jump(JMP | JEQ | K, 6, 0, "v4udp")
        asm.op(LD | B | IND, 32)  # TCP data offset
        asm.op(ALU | AND | K, 0xF0)
        asm.op(ALU | RSH | K, 2)
        asm.jump(JMP | JGE | K, 20, 0, "admit")
        asm.op(ALU | ADD | K, 20)
        asm.op(TAX)
        asm.op(LD | MEM, 2)
        asm.jump(JMP | JGE | X, 0, "v4key", "admit")  # headers within the total length
        asm.label("v4udp")
        asm.jump(JMP | JEQ | K, 17, 0, "admit")
        asm.op(LD | H | IND, 24)  # UDP length
        asm.jump(JMP | JGE | K, 8, 0, "admit")
        asm.op(ALU | ADD | K, 20)
        asm.op(TAX)
        asm.op(LD | MEM, 2)
        asm.jump(JMP | JGE | X, 0, 0, "admit")
        asm.label("v4key")
        asm.op(LDX | W | MEM, 0)
        asm.op(LD | H | IND, 22)
        asm.op(ST, 3)
        asm.op(LD | H | IND, 20)
        asm.op(LDX | W | MEM, 3)
        asm.op(ALU | XOR | X)
        asm.op(LDX | W | MEM, 0)
        asm.ja("table4")

    def _ipv6(self, asm: _Asm) -> None:
        asm.label("v6")
        asm.op(STX, 0)
        asm.op(LD | W | LEN)
        asm.op(ALU | SUB | X)
        asm.op(ST, 1)
        asm.jump(JMP | JGE | K, 54, 0, "admit")
        asm.op(LD | B | IND, 0)
        asm.op(ALU | AND | K, 0xF0)
        asm.jump(JMP | JEQ | K, 0x60, 0, "admit")
        asm.op(LD | H | IND, 4)
        asm.op(ST, 2)  # M2: payload length
        asm.jump(JMP | JEQ | K, 0, "admit", 0)
        asm.op(ALU | ADD | K, 40)
        asm.op(TAX)
        asm.op(LD | MEM, 1)
        asm.jump(JMP | JGE | X, 0, 0, "admit")
        asm.op(LDX | W | MEM, 0)
        asm.op(LD | B | IND, 6)  # next header: TCP or UDP right after the fixed header
        asm.jump(JMP | JEQ | K, 6, 0, "v6udp")
        asm.op(LD | B | IND, 52)
        asm.op(ALU | AND | K, 0xF0)
        asm.op(ALU | RSH | K, 2)
        asm.jump(JMP | JGE | K, 20, 0, "admit")
        asm.op(TAX)
        asm.op(LD | MEM, 2)
        asm.jump(JMP | JGE | X, 0, "v6key", "admit")
        asm.label("v6udp")
        asm.jump(JMP | JEQ | K, 17, 0, "admit")
        asm.op(LD | H | IND, 44)
        asm.jump(JMP | JGE | K, 8, 0, "admit")
        asm.op(TAX)
        asm.op(LD | MEM, 2)
        asm.jump(JMP | JGE | X, 0, 0, "admit")
        asm.label("v6key")
        asm.op(LDX | W | MEM, 0)
        asm.op(LD | H | IND, 42)
        asm.op(ST, 3)
        asm.op(LD | H | IND, 40)
        asm.op(LDX | W | MEM, 3)
        asm.op(ALU | XOR | X)
        asm.op(LDX | W | MEM, 0)
        asm.ja("table6")


class _Table:
    """The encoded table of one address family starting at instruction ``start``: a
    tree on the key's low bits, one trampoline per bucket, the buckets (a key compare
    per slot), then one comparison block per slot."""

    def __init__(self, start: int, per: int, block: tuple[bytes, int]) -> None:
        self.start = start
        self.per = per
        code, self.block_len = block
        nodes = BUCKETS - 1
        leaves = start + nodes
        buckets = leaves + BUCKETS
        self.bucket_len = 2 * per + 1
        self.checks = buckets + BUCKETS * self.bucket_len
        self.end = self.checks + BUCKETS * per * self.block_len
        out: list[tuple[int, int, int, int]] = []
        for node in range(nodes):  # heap order: node n has children 2n+1 (bit 0), 2n+2 (1)
            depth = (node + 1).bit_length() - 1
            bit = 1 << (BUCKET_BITS - 1 - depth)
            zero, one = 2 * node + 1, 2 * node + 2
            pc = start + node
            if zero >= nodes:  # children are leaves: leaf index = bucket number
                targets = (leaves + (one - nodes), leaves + (zero - nodes))
            else:
                targets = (start + one, start + zero)
            out.append((JMP | JSET | K, targets[0] - pc - 1, targets[1] - pc - 1, bit))
        for leaf in range(BUCKETS):
            # Leaf order follows the tree: bucket number = the bits taken, highest first.
            pc = leaves + leaf
            bucket = self._bucket_of_leaf(leaf)
            out.append((JMP | JA, 0, 0, buckets + bucket * self.bucket_len - pc - 1))
        for bucket in range(BUCKETS):
            for i in range(per):
                pc = buckets + bucket * self.bucket_len + 2 * i
                out.append((JMP | JEQ | K, 0, 1, EMPTY))
                out.append((JMP | JA, 0, 0, self.block_at(bucket * per + i) - pc - 2))
            out.append((RET | K, 0, 0, ADMIT))  # no slot of the bucket holds the key
        self.code = _pack(out) + code * (BUCKETS * per)

    @staticmethod
    def _bucket_of_leaf(leaf: int) -> int:
        # The leaves, in heap order, are the bottom level of the tree: leaf n is reached
        # by the bits of n (highest first), so it is bucket n.
        return leaf

    def key_at(self, index: int) -> int:
        bucket, i = divmod(index, self.per)
        return self.start + BUCKETS - 1 + BUCKETS + bucket * self.bucket_len + 2 * i

    def block_at(self, index: int) -> int:
        return self.checks + index * self.block_len


def _check_block(v6: bool) -> tuple[bytes, int]:
    """One slot's comparison: protocol, both addresses and both ports in either
    direction; on a match, a TCP segment with SYN, FIN or RST is still admitted. It uses
    only relative jumps, so the same bytes serve every slot (see ``_FIELDS4/6``)."""
    asm = _Asm()
    fields: dict[str, int] = {}
    base_src, base_dst, ports = (8, 24, 40) if v6 else (12, 16, 20)
    words = 4 if v6 else 1
    asm.op(LD | B | IND, 6 if v6 else 9)
    fields["proto"] = asm.jump(JMP | JEQ | K, 0, 0, "out")
    asm.op(LD | W | IND, base_src)
    fields["fwd_src0"] = asm.jump(JMP | JEQ | K, 0, 0, "rev")
    for i in range(1, words):
        asm.op(LD | W | IND, base_src + 4 * i)
        fields[f"fwd_src{i}"] = asm.jump(JMP | JEQ | K, 0, 0, "out")
    for i in range(words):
        asm.op(LD | W | IND, base_dst + 4 * i)
        fields[f"fwd_dst{i}"] = asm.jump(JMP | JEQ | K, 0, 0, "out")
    asm.op(LD | W | IND, ports)
    fields["ports_fwd"] = asm.jump(JMP | JEQ | K, 0, "control", "out")
    asm.label("rev")
    fields["rev_src0"] = asm.jump(JMP | JEQ | K, 0, 0, "out")
    for i in range(1, words):
        asm.op(LD | W | IND, base_src + 4 * i)
        fields[f"rev_src{i}"] = asm.jump(JMP | JEQ | K, 0, 0, "out")
    for i in range(words):
        asm.op(LD | W | IND, base_dst + 4 * i)
        fields[f"rev_dst{i}"] = asm.jump(JMP | JEQ | K, 0, 0, "out")
    asm.op(LD | W | IND, ports)
    fields["ports_rev"] = asm.jump(JMP | JEQ | K, 0, "control", "out")
    asm.label("control")
    asm.op(LD | B | IND, 6 if v6 else 9)
    asm.jump(JMP | JEQ | K, 17, "skip", 0)  # UDP: nothing is control
    asm.op(LD | B | IND, 53 if v6 else 33)  # TCP flags
    asm.jump(JMP | JSET | K, 0x07, "out", 0)  # FIN, SYN, RST
    asm.label("skip")
    asm.ret(SKIP)
    asm.label("out")
    asm.ret(ADMIT)
    (_FIELDS6 if v6 else _FIELDS4).update(fields)
    code = asm.assemble()
    return _pack(code), len(code)


def _pack(code: list[tuple[int, int, int, int]]) -> bytes:
    pack = _INSN.pack
    return b"".join([pack(*insn) for insn in code])


_FIELDS4: dict[str, int] = {}
_FIELDS6: dict[str, int] = {}
"""Instruction offsets, within a comparison block, of the constants a slot sets."""


# -- live captures ----------------------------------------------------------------------

TUNNEL_PROTOCOLS = (4, 41, 47, 137)
"""IP-in-IP, IPv6-in-IPv4 (and 6in6/4in6 under IPv6), GRE (and ERSPAN over it), MPLS-in-IP."""
TUNNEL_UDP_PORTS = tuple(sorted(UDP_TUNNEL_PORTS))
"""VXLAN, Geneve, GTP-U: the ports the decoder decapsulates."""
TUNNEL_ETHERTYPES = (0x8863, 0x8864, 0x8847, 0x8848)
"""PPPoE discovery and session, MPLS unicast and multicast."""
DNS_PORTS = (53, 5353, 5355)
ENCRYPTED_DNS_PORTS = (853, 784)
ADDRESSING_PORTS = (67, 68, 546, 547)
"""DHCP and DHCPv6: which resolvers a network hands out (admitted, few and small)."""
ICMP_ERRORS = (3, 4, 5, 11, 12)
ICMPV6_KINDS = (1, 2, 3, 4, 133, 134, 135, 136, 137)
"""ICMPv6 errors and Neighbor Discovery (router advertisements carry RDNSS)."""


def prefilter_expression(linktype: int = ETHERNET) -> str:
    """The capture filter for a live interface of ``linktype``, in libpcap's language:
    every packet that can carry a fact a detector uses, on Ethernet under zero, one or two
    VLAN tags (802.1Q, QinQ).
    Live packets cannot be read twice, so unlike the bypass program this cannot know
    which flows are done: it admits

    - DNS (53, 5353, 5355) and DoT/DoQ (853, 784) over TCP and UDP, every packet;
    - TCP SYN, FIN and RST on any port, and TCP segments whose payload starts like a
      TLS handshake record (0x16 0x03) on any port;
    - QUIC long-header packets (first byte with the top two bits set) over UDP;
    - ICMP and ICMPv6 errors, IPv4 fragments after the first and every IPv6 packet with
      an extension header (its transport header is not where the offsets look);
    - tunnels whole: IP protocols 4, 41, 47 and 137, UDP 4789, 6081 and 2152, PPPoE
      (discovery and session) and MPLS frames;
    - the few small packets that say how a host finds its resolvers: DHCP, DHCPv6,
      ARP and ICMPv6 Neighbor Discovery.

    Not admitted: cleartext HTTP/2 (h2c) DoH after its first segment, and TLS or QUIC
    bulk; ``watch --filter`` takes any other expression.

    ``tcp[...]`` and ``udp[...]`` in libpcap's language apply to IPv4 only, so the IPv6
    half uses ``ip6[...]`` offsets from the 40-byte fixed header.
    """
    fact_ports = (*DNS_PORTS, *ENCRYPTED_DNS_PORTS)
    v4 = " or ".join(
        (
            " or ".join(f"port {p}" for p in fact_ports),
            "ip[6:2] & 0x1fff != 0",  # a later fragment: no transport header to test
            "(icmp and (" + " or ".join(f"icmp[icmptype] = {t}" for t in ICMP_ERRORS) + "))",
            " or ".join(f"ip proto {p}" for p in TUNNEL_PROTOCOLS),
            " or ".join(f"udp port {p}" for p in (*TUNNEL_UDP_PORTS, *ADDRESSING_PORTS[:2])),
            "(udp and udp[8] & 0xc0 = 0xc0)",
            "(tcp and tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0)",
            # Last: a segment without payload makes this load fail, which rejects the
            # packet whatever a later test would say.
            "(tcp and tcp[((tcp[12] & 0xf0) >> 2):2] = 0x1603)",
        )
    )
    # IPv6 without extension headers: next header at ip6[6], transport header at ip6[40].
    v6_ports = " or ".join(f"ip6[40:2] = {p} or ip6[42:2] = {p}" for p in fact_ports)
    v6_udp_ports = " or ".join(
        f"ip6[40:2] = {p} or ip6[42:2] = {p}" for p in (*TUNNEL_UDP_PORTS, *ADDRESSING_PORTS[2:])
    )
    v6 = " or ".join(
        (
            "(ip6[6] != 6 and ip6[6] != 17 and ip6[6] != 58)",  # extension header, tunnel
            f"((ip6[6] = 6 or ip6[6] = 17) and ({v6_ports}))",
            f"(ip6[6] = 17 and ({v6_udp_ports}))",
            "(ip6[6] = 58 and (" + " or ".join(f"ip6[40] = {t}" for t in ICMPV6_KINDS) + "))",
            "(ip6[6] = 17 and ip6[48] & 0xc0 = 0xc0)",
            "(ip6[6] = 6 and ip6[53] & 0x07 != 0)",
            "(ip6[6] = 6 and ip6[(40 + ((ip6[52] & 0xf0) >> 2)):2] = 0x1603)",
        )
    )
    inner = f"(ip and ({v4})) or (ip6 and ({v6}))"
    if linktype not in (ETHERNET, SLL, SLL2):
        return inner  # IP only: no ethertype to test (raw IP, BSD loopback)
    inner += " or " + " or ".join(("arp", *(f"ether proto 0x{t:04x}" for t in TUNNEL_ETHERTYPES)))
    if linktype != ETHERNET:
        return inner  # libpcap cannot test VLAN tags on Linux cooked captures
    # Each ``vlan`` moves libpcap's offsets for the rest of the expression, so the second
    # tag is tested inside the first one's branch, never beside it.
    return f"{inner} or (vlan and ({inner} or (vlan and ({inner}))))"
