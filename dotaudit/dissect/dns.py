"""Lean DNS message dissector: header, first question and EDNS(0), nothing else.

The audit needs who asked what, with which flags and EDNS options; it never needs the
answer records. So the first question is decoded, every other name and record is only
skipped (bounded by the message size), and the OPT record is decoded when it is met.
Names are rendered in master-file presentation form (RFC 1035 §5.1, as dnspython does):
hostile bytes become ``\\DDD`` escapes, so no control character reaches any output.

A message whose header parses always yields :class:`DnsFacts`; anything wrong after the
header sets ``malformed`` to a short stable reason instead of raising. Only a message
shorter than the 12-byte header raises :class:`MalformedError`.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from dataclasses import dataclass
from typing import Any

from dotaudit.errors import MalformedError
from dotaudit.model.events import Edns

MAX_NAME_OCTETS = 255
"""RFC 1035 §2.3.4: a name is at most 255 octets on the wire."""
MAX_POINTER_JUMPS = 16
"""Compression pointers followed per name; more is reported as "compression_depth"."""

OPT = 41
OPT_NSID = 3
OPT_ECS = 8
OPT_KEEPALIVE = 11
OPT_PADDING = 12

_HEADER = struct.Struct("!HHHHHH")
_TWO_U16 = struct.Struct("!HH")
_RR_FIXED = struct.Struct("!HHIH")

_FLAG_BITS = (("aa", 0x400), ("tc", 0x200), ("rd", 0x100), ("ra", 0x80), ("ad", 0x20), ("cd", 0x10))
# One shared tuple per value of header bits 4..10, so no tuple is built per message.
_FLAGS_BY_BITS = tuple(
    tuple(name for name, bit in _FLAG_BITS if (index << 4) & bit) for index in range(128)
)

# Master-file specials are quoted with a backslash, everything outside 0x21..0x7e is
# written \DDD; the rest passes through. Same rules as dnspython's to_text.
_SPECIALS = b'"().;\\@$'
_PLAIN = bytes(c for c in range(0x21, 0x7F) if c not in _SPECIALS)
_NEEDS_ESCAPE_DOTTED = re.compile(b"[^." + re.escape(_PLAIN) + b"]")
_LABEL_ESCAPES = tuple(
    chr(c) if c in _PLAIN else "\\" + chr(c) if c in _SPECIALS else f"\\{c:03d}" for c in range(256)
)
_PRINTABLE = re.compile(b"[\x20-\x7e]*")

# qtypes and qclasses a real question carries; looks_like_dns rejects the rest.
_PLAUSIBLE_QTYPES = frozenset(range(1, 263)) | {32768, 32769}
_PLAUSIBLE_QCLASSES = frozenset({1, 3, 4, 254, 255, 0x8001})
_QUERY_OPCODES = frozenset({0, 2, 4, 5})


@dataclass(frozen=True, slots=True)
class DnsFacts:
    id: int
    qr: bool
    opcode: int
    rcode: int
    """Includes the EDNS extended-rcode bits when an OPT record is present."""
    flags: tuple[str, ...]
    """Subset of ("aa", "tc", "rd", "ra", "ad", "cd"), in that order."""
    qdcount: int
    ancount: int
    nscount: int
    arcount: int
    qname: str | None
    """First question name without the trailing dot ("." for the root); None if absent."""
    qtype: int | None
    qclass: int | None
    edns: Edns | None
    malformed: str | None
    """None when the whole message parsed, else the first problem met."""
    size: int


def _shadow_class(frozen: type) -> type[Any]:
    """A plain class with exactly ``frozen``'s slot layout, to build it quickly.

    A frozen dataclass sets each field through ``object.__setattr__``, which costs more
    than the whole parse (about 4 µs for DnsFacts). An instance of the shadow class is
    filled with plain attribute stores and then switched to ``frozen`` by ``__class__``
    assignment, which CPython allows because the layouts are identical; from then on it
    is an ordinary immutable instance of ``frozen``.
    """
    return type(f"_{frozen.__name__}Shadow", (), {"__slots__": vars(frozen)["__slots__"]})


_FACTS_SHADOW = _shadow_class(DnsFacts)
_EDNS_SHADOW = _shadow_class(Edns)

# The same names and OPT records recur constantly (a client sends the same OPT record
# with every query), so their decoded forms are kept, keyed by their exact wire bytes.
# Both caches are emptied when full: bounded memory, no eviction bookkeeping.
NAME_CACHE_SIZE = 4096
_NAME_CACHE: dict[bytes, str] = {}
QUESTION_CACHE_SIZE = 4096
_QUESTION_CACHE: dict[bytes, tuple[str, int, int]] = {}
"""First questions (cached name, type, class) by their wire bytes."""
_NAME_SEARCH_END = 12 + MAX_NAME_OCTETS
OPT_CACHE_SIZE = 1024
MAX_CACHED_OPT = 600
"""Longer OPT records (big padding) are decoded every time rather than kept."""
_OPT_CACHE: dict[bytes, tuple[Edns, int, str | None]] = {}


DnsFields = tuple[
    int, bool, int, int, tuple[str, ...], int, int, int, int,
    str | None, int | None, int | None, Edns | None, str | None, int,
]  # fmt: skip
""":class:`DnsFacts`'s fields, in its order, as a plain tuple."""


def parse_dns(data: bytes) -> DnsFacts:
    """Facts of one DNS message (a UDP payload, or one TCP message without its prefix)."""
    facts = _FACTS_SHADOW()
    (
        facts.id, facts.qr, facts.opcode, facts.rcode, facts.flags, facts.qdcount,
        facts.ancount, facts.nscount, facts.arcount, facts.qname, facts.qtype, facts.qclass,
        facts.edns, facts.malformed, facts.size,
    ) = dns_fields(data)  # fmt: skip
    facts.__class__ = DnsFacts
    result: DnsFacts = facts
    return result


def dns_fields(data: bytes) -> DnsFields:
    """What :func:`parse_dns` finds, as a tuple: the per-message hot path, where a
    DnsFacts object would only be read back into an event (same rules, same errors)."""
    if type(data) is not bytes:
        data = bytes(data)  # the caches need hashable keys (bytearray, memoryview)
    n = len(data)
    if n < 12:
        raise MalformedError(f"dns message of {n} bytes is shorter than the 12-byte header")
    ident, word, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
    qname: str | None = None
    qtype: int | None = None
    qclass: int | None = None
    reason: str | None = None
    edns: Edns | None = None
    rcode = word & 0x000F
    if qdcount:
        # A name seen before is found with one search and one lookup, no label walk: a
        # cached wire name has no zero octet but its last, so if the bytes up to the
        # first zero are one, walking the labels would read exactly those bytes. A
        # question seen before (that name, then type and class) likewise.
        end = data.find(0, 12, _NAME_SEARCH_END)
        question = _QUESTION_CACHE.get(data[12 : end + 5]) if end > 0 else None
        if question is not None:
            qname, qtype, qclass = question
            pos = end + 5
        else:
            cached_name = _NAME_CACHE.get(data[12 : end + 1]) if end > 0 else None
            if cached_name is not None:
                qname, pos = cached_name, end + 1
            else:
                qname, pos, reason = _read_name(data, 12, n)
            if pos < 0:
                if reason == "truncated":
                    reason = "truncated_question"
            elif pos + 4 > n:
                reason = reason or "truncated_question"
                pos = -1
            else:
                qtype, qclass = _TWO_U16.unpack_from(data, pos)
                pos += 4
                if cached_name is not None:
                    if len(_QUESTION_CACHE) >= QUESTION_CACHE_SIZE:
                        _QUESTION_CACHE.clear()
                    _QUESTION_CACHE[data[12:pos]] = (cached_name, qtype, qclass)
    else:
        pos = 12
    if qdcount == 1 and pos >= 0:
        # Nearly every message. Its answer and authority records mostly have a one-pointer
        # owner: for those only the length is read. Whatever else follows, or a record
        # that runs past the message, is left to _walk_records.
        index = 0
        first_additional = ancount + nscount
        while index < first_additional and pos + 12 <= n and data[pos] >= 0xC0:
            end = pos + 12 + ((data[pos + 10] << 8) | data[pos + 11])
            if end > n:
                break
            pos = end
            index += 1
        if index == first_additional and pos == n and not arcount:
            pass  # nothing left: a plain query, or a response without EDNS
        elif (
            index == first_additional
            and arcount == 1
            and pos < n
            and data[pos] == 0
            and (cached := _OPT_CACHE.get(data[pos + 1 :])) is not None
        ):
            # the EDNS case: a root-owned record ending the message, seen before
            edns, ext_rcode, reason = cached[0], cached[1], reason or cached[2]
            rcode |= ext_rcode << 4
        else:
            edns, ext_rcode, rest_reason = _walk_records(
                data, pos, n, 0, ancount, nscount, arcount, index
            )
            rcode |= ext_rcode << 4
            reason = reason or rest_reason
    elif pos >= 0:
        edns, ext_rcode, rest_reason = _walk_records(
            data, pos, n, qdcount - 1 if qdcount else 0, ancount, nscount, arcount
        )
        rcode |= ext_rcode << 4
        reason = reason or rest_reason
    return (
        ident, word >= 0x8000, (word >> 11) & 0x0F, rcode, _FLAGS_BY_BITS[(word >> 4) & 0x7F],
        qdcount, ancount, nscount, arcount, qname, qtype, qclass, edns, reason, n,
    )  # fmt: skip


def _read_name(data: bytes, pos: int, n: int) -> tuple[str | None, int, str | None]:
    """Decode the name at ``pos``, from the cache when it is a plain uncompressed name."""
    start = pos
    while pos < n:
        length = data[pos]
        if length == 0:
            end = pos + 1
            if end - start > MAX_NAME_OCTETS:
                break
            wire = data[start:end]
            text = _NAME_CACHE.get(wire)
            if text is None:
                text = _plain_name_text(wire)
                if text is None:
                    return _decode_name(data, start, n)
                if len(_NAME_CACHE) >= NAME_CACHE_SIZE:
                    _NAME_CACHE.clear()
                _NAME_CACHE[wire] = text
            return text, end, None
        if length >= 0x40:
            break
        pos += length + 1
    return _decode_name(data, start, n)


def _plain_name_text(wire: bytes) -> str | None:
    """Text of an uncompressed, well-formed wire name; None if it needs escapes."""
    if len(wire) == 1:
        return "."
    # Overwrite each inner length octet with a dot: one pass, no per-label slices.
    raw = bytearray(wire[1:-1])
    size = len(raw)
    index = wire[0]
    dots = 0
    while index < size:
        step = raw[index]
        raw[index] = 0x2E
        index += step + 1
        dots += 1
    if raw.count(b".") != dots or _NEEDS_ESCAPE_DOTTED.search(raw) is not None:
        return None
    return raw.decode("ascii")


def _decode_name(data: bytes, pos: int, n: int) -> tuple[str | None, int, str | None]:
    """Decode the name at ``pos``: (text, offset after it, problem).

    The offset is -1 when the name runs off the message (problem "truncated") or when
    its end cannot be known. Pointers must point backwards (RFC 1035 §4.1.4 "a prior
    occurrence"); a forward one is still followed, within the jump bound, so the name
    is reported, and flagged. A name over 255 octets is cut at the last whole label
    that fits.
    """
    labels: list[bytes] = []
    octets = 1
    end = -1
    reason: str | None = None
    visited: list[int] | None = None
    too_long = False
    while True:
        if pos >= n:
            return None, -1, "truncated"
        length = data[pos]
        if length == 0:
            if end < 0:
                end = pos + 1
            break
        if length < 0x40:
            after = pos + 1 + length
            if after > n:
                return None, -1, "truncated"
            if not too_long:
                octets += length + 1
                if octets > MAX_NAME_OCTETS:
                    too_long = True
                    if end >= 0:
                        break
                else:
                    labels.append(data[pos + 1 : after])
            pos = after
            continue
        if length < 0xC0:
            # 0x40 and 0x80 prefixes: obsolete extended or reserved label types.
            return None, end, "label_too_long"
        if pos + 1 >= n:
            return None, -1, "truncated"
        target = ((length & 0x3F) << 8) | data[pos + 1]
        if end < 0:
            end = pos + 2
            if too_long:
                break
        if visited is None:
            visited = []
        elif target in visited:
            return None, end, "pointer_loop"
        if len(visited) >= MAX_POINTER_JUMPS:
            return None, end, "compression_depth"
        if target >= pos:
            if target >= n:
                return None, end, "pointer_out_of_range"
            reason = reason or "label_forward_pointer"
        visited.append(target)
        pos = target
    if too_long:
        reason = reason or "name_too_long"
    return _labels_text(labels), end, reason


def _labels_text(labels: list[bytes]) -> str:
    if not labels:
        return "."
    raw = b".".join(labels)
    if _NEEDS_ESCAPE_DOTTED.search(raw) is None and raw.count(b".") == len(labels) - 1:
        return raw.decode("ascii")
    escapes = _LABEL_ESCAPES
    return ".".join("".join([escapes[c] for c in label]) for label in labels)


def _skip_name(data: bytes, pos: int, n: int, limit: int = MAX_NAME_OCTETS) -> int:
    """Offset after the name at ``pos``, not decoded and pointers not followed.

    Negative when it cannot be skipped cleanly: -1 truncated, -2 bad label type, -3
    more than ``limit`` octets before its end or first pointer.
    """
    octets = 1
    while pos < n:
        length = data[pos]
        if length == 0:
            return pos + 1
        if length < 0x40:
            pos += length + 1
            octets += length + 1
            if octets > limit:
                return -3
        elif length >= 0xC0:
            return pos + 2 if pos + 2 <= n else -1
        else:
            return -2
    return -1


def _skip_bad_name(data: bytes, pos: int, n: int) -> tuple[int, str | None]:
    """Like _skip_name, but turns its failure codes into (offset, problem)."""
    end = _skip_name(data, pos, n)
    if end >= 0:
        return end, None
    if end == -3:
        # Too long is a problem, not a dead end: its end is still found (bounded by n).
        return _skip_name(data, pos, n, n), "name_too_long"
    return -1, "label_too_long" if end == -2 else "truncated"


_TRUNCATED_SECTION = ("truncated_answer", "truncated_authority", "truncated_additional")


def _walk_records(
    data: bytes,
    pos: int,
    n: int,
    questions: int,
    ancount: int,
    nscount: int,
    arcount: int,
    index: int = 0,
) -> tuple[Edns | None, int, str | None]:
    """Skip the remaining questions and the records from number ``index`` on (counted
    across the three sections); decode the OPT record on the way.

    Each step consumes at least one byte of the message or stops, so the work is
    bounded by the message size whatever the counts claim.
    """
    reason: str | None = None
    for _ in range(questions):
        pos, problem = _skip_bad_name(data, pos, n)
        reason = reason or problem
        if pos < 0:
            return None, 0, reason if reason != "truncated" else "truncated_question"
        pos += 4
        if pos > n:
            return None, 0, reason or "truncated_question"
    first_additional = ancount + nscount
    edns: Edns | None = None
    ext_rcode = 0
    total = first_additional + arcount
    while index < total:
        # Most record owners are one compression pointer (to the question): no call.
        if pos < n and data[pos] >= 0xC0:
            after_name = pos + 2 if pos + 2 <= n else -1
        else:
            after_name = _skip_name(data, pos, n)
        if after_name < 0:
            after_name, problem = _skip_bad_name(data, pos, n)
            if problem != "truncated":
                reason = reason or problem
        if after_name < 0 or after_name + 10 > n:
            section = 0 if index < ancount else 1 if index < first_additional else 2
            return edns, ext_rcode, reason or _TRUNCATED_SECTION[section]
        rtype, rclass, ttl, rdlength = _RR_FIXED.unpack_from(data, after_name)
        start = after_name + 10
        pos = start + rdlength
        if rtype == OPT and index >= first_additional:
            if edns is not None:
                reason = reason or "multiple_opt"
            else:
                key = data[after_name:pos]
                cached = _OPT_CACHE.get(key) if pos <= n else None
                if cached is None:
                    cached = _parse_opt(data, rclass, ttl, start, min(pos, n))
                    if pos <= n and len(key) <= MAX_CACHED_OPT:
                        if len(_OPT_CACHE) >= OPT_CACHE_SIZE:
                            _OPT_CACHE.clear()
                        _OPT_CACHE[key] = cached
                edns, ext_rcode, opt_reason = cached
                if pos <= n:  # a cut option list is the truncation's fault, not the sender's
                    reason = reason or opt_reason
        if pos > n:
            section = 0 if index < ancount else 1 if index < first_additional else 2
            return edns, ext_rcode, reason or _TRUNCATED_SECTION[section]
        index += 1
    if pos < n:
        reason = reason or "trailing_garbage"
    return edns, ext_rcode, reason


def _parse_opt(
    data: bytes, udp_size: int, ttl: int, pos: int, end: int
) -> tuple[Edns, int, str | None]:
    """The OPT record (RFC 6891 §6.1.2-6.1.3): its options, and the extended rcode bits."""
    options: list[int] = []
    padding: int | None = None
    keepalive: int | None = None
    ecs: str | None = None
    nsid: str | None = None
    reason: str | None = None
    while pos < end:
        if pos + 4 > end:
            reason = "edns_bad_option"
            break
        code, length = _TWO_U16.unpack_from(data, pos)
        pos += 4
        if pos + length > end:
            reason = "edns_bad_option"
            break
        options.append(code)
        if code == OPT_PADDING:
            padding = length
        elif code == OPT_KEEPALIVE:
            if length == 0:
                keepalive = -1
            elif length == 2:
                keepalive = (data[pos] << 8) | data[pos + 1]
            else:
                reason = reason or "edns_bad_keepalive"
        elif code == OPT_ECS:
            ecs = _ecs_text(data[pos : pos + length])
            if ecs is None:
                reason = reason or "edns_bad_ecs"
        elif code == OPT_NSID:
            nsid = data[pos : pos + length].hex()
        pos += length
    edns = _EDNS_SHADOW()
    edns.udp_size = udp_size
    edns.do = bool(ttl & 0x8000)
    edns.version = (ttl >> 16) & 0xFF
    edns.padding = padding
    edns.keepalive = keepalive
    edns.ecs = ecs
    edns.nsid = nsid
    edns.options = tuple(options)
    edns.__class__ = Edns
    made: Edns = edns
    return made, ttl >> 24, reason


def _ecs_text(value: bytes) -> str | None:
    """RFC 7871 §6 Client Subnet as "address/source-prefix"; None when malformed."""
    if len(value) < 4:
        return None
    family = (value[0] << 8) | value[1]
    source = value[2]
    address = value[4:]
    width = 4 if family == 1 else 16 if family == 2 else 0
    if not width or source > width * 8 or len(address) != (source + 7) // 8:
        return None
    padded = address + bytes(width - len(address))
    if width == 4:
        return f"{padded[0]}.{padded[1]}.{padded[2]}.{padded[3]}/{source}"
    return f"{ipaddress.IPv6Address(padded).compressed}/{source}"


def looks_like_dns(data: bytes) -> bool:
    """Cheap test for a DNS message on a port that does not say so.

    Checks what random bytes, TLS records, QUIC packets and HTTP almost never satisfy:
    a known opcode, the zero Z bit, at least one question, counts that fit the
    size, a query with rcode 0 and no answers, and a first question of printable,
    uncompressed labels with a known qtype and qclass.
    """
    n = len(data)
    if n < 17:
        return False
    _ident, word, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
    opcode = (word >> 11) & 0x0F
    if word & 0x0040 or opcode not in _QUERY_OPCODES or not qdcount:
        return False
    if 12 + 5 * qdcount + 11 * (ancount + nscount + arcount) > n:
        return False
    if word < 0x8000:
        if word & 0x000F or (opcode == 0 and (ancount or nscount)):
            return False
    elif word & 0x000F > 11:
        return False
    pos = 12
    while True:
        if pos >= n:
            return False
        length = data[pos]
        if length == 0:
            break
        if length >= 0x40:
            return False
        after = pos + 1 + length
        if after > n or _PRINTABLE.fullmatch(data, pos + 1, after) is None:
            return False
        pos = after
    if pos + 5 > n:
        return False
    qtype, qclass = _TWO_U16.unpack_from(data, pos + 1)
    return qtype in _PLAUSIBLE_QTYPES and qclass in _PLAUSIBLE_QCLASSES


class DnsTcpFramer:
    """Splits one direction of a DNS-over-TCP stream into messages (RFC 1035 §4.2.2).

    Each message has a 2-byte length prefix; segments may hold several messages or a
    part of one. Only one partial message is ever held, so the buffer never exceeds
    65535 + 2 bytes. A zero length yields an empty message, which parse_dns rejects.
    """

    __slots__ = ("_partial",)

    def __init__(self) -> None:
        self._partial = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete message held until more data arrives."""
        return len(self._partial)

    def reset(self) -> None:
        """Drop the partial message, e.g. after a TCP gap."""
        self._partial.clear()

    def feed(self, data: bytes) -> list[bytes]:
        messages: list[bytes] = []
        partial = self._partial
        pos = 0
        n = len(data)
        if partial:
            if len(partial) < 2:
                take = min(2 - len(partial), n)
                partial += data[:take]
                pos = take
                if len(partial) < 2:
                    return messages
            wanted = 2 + ((partial[0] << 8) | partial[1])
            take = min(wanted - len(partial), n - pos)
            partial += data[pos : pos + take]
            pos += take
            if len(partial) < wanted:
                return messages
            messages.append(bytes(partial[2:]))
            partial.clear()
        while n - pos >= 2:
            end = pos + 2 + ((data[pos] << 8) | data[pos + 1])
            if end > n:
                break
            messages.append(bytes(data[pos + 2 : end]))
            pos = end
        if pos < n:
            partial += data[pos:]
        return messages
