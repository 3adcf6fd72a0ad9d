"""HPACK (RFC 7541) header block decoding, bounded for hostile input.

One :class:`HpackDecoder` per direction of an HTTP/2 connection: blocks must be fed in
order, because literals "with incremental indexing" change the dynamic table that later
blocks refer to. Every bad block is a MalformedError; the caller then gives up on the
direction, since the compression context is lost.
"""

from __future__ import annotations

from collections import deque
from functools import cache

from dotaudit.errors import MalformedError

DEFAULT_TABLE_SIZE = 4096
MAX_TABLE_SIZE = 65_536
"""The largest dynamic table we keep, whatever size the peers agree on."""
MAX_INTEGER_BYTES = 5
ENTRY_OVERHEAD = 32

# RFC 7541 Appendix A.
STATIC_TABLE: tuple[tuple[bytes, bytes], ...] = tuple(
    (name.encode(), value.encode())
    for name, value in (
        (":authority", ""),
        (":method", "GET"),
        (":method", "POST"),
        (":path", "/"),
        (":path", "/index.html"),
        (":scheme", "http"),
        (":scheme", "https"),
        (":status", "200"),
        (":status", "204"),
        (":status", "206"),
        (":status", "304"),
        (":status", "400"),
        (":status", "404"),
        (":status", "500"),
        ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"),
        ("accept-language", ""),
        ("accept-ranges", ""),
        ("accept", ""),
        ("access-control-allow-origin", ""),
        ("age", ""),
        ("allow", ""),
        ("authorization", ""),
        ("cache-control", ""),
        ("content-disposition", ""),
        ("content-encoding", ""),
        ("content-language", ""),
        ("content-length", ""),
        ("content-location", ""),
        ("content-range", ""),
        ("content-type", ""),
        ("cookie", ""),
        ("date", ""),
        ("etag", ""),
        ("expect", ""),
        ("expires", ""),
        ("from", ""),
        ("host", ""),
        ("if-match", ""),
        ("if-modified-since", ""),
        ("if-none-match", ""),
        ("if-range", ""),
        ("if-unmodified-since", ""),
        ("last-modified", ""),
        ("link", ""),
        ("location", ""),
        ("max-forwards", ""),
        ("proxy-authenticate", ""),
        ("proxy-authorization", ""),
        ("range", ""),
        ("referer", ""),
        ("refresh", ""),
        ("retry-after", ""),
        ("server", ""),
        ("set-cookie", ""),
        ("strict-transport-security", ""),
        ("transfer-encoding", ""),
        ("user-agent", ""),
        ("vary", ""),
        ("via", ""),
        ("www-authenticate", ""),
    )
)

# RFC 7541 Appendix B is a canonical Huffman code: within one length, codes rise with the
# symbol value, and every code is numerically above all shorter ones. So the code lengths
# alone define it; the codes are rebuilt below (and checked against the RFC's examples).
# fmt: off
_LENGTH_CLASSES: dict[int, bytes | tuple[int, ...]] = {
    5: b"012aceiost",
    6: b" %-./3456789=A_bdfghlmnpru",
    7: b":BCDEFGHIJKLMNOPQRSTUVWYjkqvwxyz",
    8: b"&*,;XZ",
    10: b"!\"()?",
    11: b"'+|",
    12: b"#>",
    13: b"\x00$@[]~",
    14: b"^}",
    15: b"<`{",
    19: (92, 195, 208),
    20: (128, 130, 131, 162, 184, 194, 224, 226),
    21: (153, 161, 167, 172, 176, 177, 179, 209, 216, 217, 227, 229, 230),
    22: (129, 132, 133, 134, 136, 146, 154, 156, 160, 163, 164, 169, 170,
         173, 178, 181, 185, 186, 187, 189, 190, 196, 198, 228, 232, 233),
    23: (1, 135, 137, 138, 139, 140, 141, 143, 147, 149, 150, 151, 152, 155, 157,
         158, 165, 166, 168, 174, 175, 180, 182, 183, 188, 191, 197, 231, 239),
    24: (9, 142, 144, 145, 148, 159, 171, 206, 215, 225, 236, 237),
    25: (199, 207, 234, 235),
    26: (192, 193, 200, 201, 202, 205, 210, 213, 218, 219, 238, 240, 242, 243, 255),
    27: (203, 204, 211, 212, 214, 221, 222, 223, 241, 244,
         245, 246, 247, 248, 250, 251, 252, 253, 254),
    28: (*range(2, 9), 11, 12, *range(14, 22), *range(23, 32), 127, 220, 249),
    30: (10, 13, 22, 256),
}
# fmt: on
EOS = 256
MAX_CODE_BITS = 30


def _canonical_code() -> tuple[list[int], list[int], list[int], list[int]]:
    """(first code, count, offset into symbols) per length, and the symbols in code order."""
    first = [0] * (MAX_CODE_BITS + 1)
    count = [0] * (MAX_CODE_BITS + 1)
    offset = [0] * (MAX_CODE_BITS + 1)
    symbols: list[int] = []
    code = 0
    for length in range(1, MAX_CODE_BITS + 1):
        members = sorted(_LENGTH_CLASSES.get(length, ()))
        first[length] = code
        count[length] = len(members)
        offset[length] = len(symbols)
        symbols.extend(members)
        code = (code + len(members)) << 1
    return first, count, offset, symbols


_FIRST, _COUNT, _OFFSET, _SYMBOLS = _canonical_code()


def huffman_code(symbol: int) -> tuple[int, int]:
    """(code, bit length) of one symbol; for encoders in tests and for self-checks."""
    index = _SYMBOLS.index(symbol)
    for length in range(1, MAX_CODE_BITS + 1):
        if _OFFSET[length] <= index < _OFFSET[length] + _COUNT[length]:
            return _FIRST[length] + index - _OFFSET[length], length
    raise ValueError(symbol)


@cache  # built on the first Huffman string, not at import: most runs never see h2c
def _decoding_machine() -> tuple[list[int], list[bool]]:
    """A state machine that decodes 4 bits per step (states: internal tree nodes).

    Entry ``state << 4 | nibble`` is ``next | (symbol + 1) << 8 | eos << 17``; a nibble
    completes at most one symbol since no code is shorter than 5 bits. ``accepting[s]``
    says a string may end in state ``s``: the root, or up to 7 one-bits of padding.
    """
    kids: list[list[int]] = [[0, 0]]  # >= 0: internal node; < 0: leaf -(symbol + 1)
    for symbol in _SYMBOLS:
        code, length = huffman_code(symbol)
        node = 0
        for i in range(length - 1, -1, -1):
            bit = (code >> i) & 1
            if i == 0:
                kids[node][bit] = -(symbol + 1)
            else:
                if kids[node][bit] == 0:
                    kids.append([0, 0])
                    kids[node][bit] = len(kids) - 1
                node = kids[node][bit]
    table = [0] * (len(kids) * 16)
    for state in range(len(kids)):
        for nibble in range(16):
            node, emitted, eos = state, 0, 0
            for shift in (3, 2, 1, 0):
                child = kids[node][(nibble >> shift) & 1]
                if child < 0:
                    emitted, node = -child, 0
                    eos |= int(emitted - 1 == EOS)
                else:
                    node = child
            table[state << 4 | nibble] = node | emitted << 8 | eos << 17
    accepting = [False] * len(kids)
    node = 0
    for _ in range(8):
        accepting[node] = True
        node = kids[node][1]
        if node <= 0:
            break
    return table, accepting


def huffman_decode(data: bytes) -> bytes:
    """RFC 7541 §5.2: EOS inside the string, or padding that is not a short run of 1s, is bad."""
    out = bytearray()
    append = out.append
    machine, accepting = _decoding_machine()
    state = 0
    for byte in data:
        entry = machine[state << 4 | byte >> 4]
        if entry > 0xFF:
            if entry >> 17:
                raise MalformedError("hpack: EOS inside a Huffman string")
            append((entry >> 8) - 1)
        entry = machine[(entry & 0xFF) << 4 | byte & 15]
        if entry > 0xFF:
            if entry >> 17:
                raise MalformedError("hpack: EOS inside a Huffman string")
            append((entry >> 8) - 1)
        state = entry & 0xFF
    if not accepting[state]:
        raise MalformedError("hpack: bad Huffman padding")
    return bytes(out)


class HpackDecoder:
    """Decodes the header blocks of one direction, keeping its dynamic table."""

    __slots__ = ("_entries", "_max_size", "_size")

    def __init__(self, max_size: int = DEFAULT_TABLE_SIZE) -> None:
        self._entries: deque[tuple[bytes, bytes]] = deque()
        self._size = 0
        self._max_size = max_size

    @property
    def table_size(self) -> int:
        """Bytes the dynamic table holds by RFC 7541 §4.1 accounting."""
        return self._size

    @property
    def table(self) -> tuple[tuple[bytes, bytes], ...]:
        """Dynamic table entries, newest first."""
        return tuple(self._entries)

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = []
        pos = 0
        end = len(block)
        while pos < end:
            byte = block[pos]
            if byte & 0x80:  # indexed header field
                index, pos = _integer(block, pos, 7)
                headers.append(self._lookup(index))
            elif byte & 0x40:  # literal with incremental indexing
                name, value, pos = self._literal(block, pos, 6)
                headers.append((name, value))
                self._add(name, value)
            elif byte & 0x20:  # dynamic table size update
                size, pos = _integer(block, pos, 5)
                if size > MAX_TABLE_SIZE:
                    raise MalformedError(f"hpack: table size {size} above {MAX_TABLE_SIZE}")
                self._max_size = size
                self._evict(0)
            else:  # literal without indexing / never indexed
                name, value, pos = self._literal(block, pos, 4)
                headers.append((name, value))
        return headers

    def _lookup(self, index: int) -> tuple[bytes, bytes]:
        if index == 0:
            raise MalformedError("hpack: index 0")
        if index <= len(STATIC_TABLE):
            return STATIC_TABLE[index - 1]
        dynamic = index - len(STATIC_TABLE) - 1
        if dynamic >= len(self._entries):
            raise MalformedError(f"hpack: index {index} beyond the table")
        return self._entries[dynamic]

    def _literal(self, block: bytes, pos: int, prefix: int) -> tuple[bytes, bytes, int]:
        index, pos = _integer(block, pos, prefix)
        if index:
            name = self._lookup(index)[0]
        else:
            name, pos = _string(block, pos)
        value, pos = _string(block, pos)
        return name, value, pos

    def _add(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value) + ENTRY_OVERHEAD
        self._evict(size)
        if size <= self._max_size:  # a larger entry just empties the table (§4.4)
            self._entries.appendleft((name, value))
            self._size += size

    def _evict(self, room: int) -> None:
        while self._entries and self._size + room > self._max_size:
            name, value = self._entries.pop()
            self._size -= len(name) + len(value) + ENTRY_OVERHEAD


def _integer(block: bytes, pos: int, prefix: int) -> tuple[int, int]:
    """RFC 7541 §5.1 integer with an N-bit prefix; huge values are malformed, not slow."""
    mask = (1 << prefix) - 1
    value = block[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    for _ in range(MAX_INTEGER_BYTES):
        if pos >= len(block):
            raise MalformedError("hpack: integer runs past the block")
        byte = block[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
    raise MalformedError("hpack: integer too long")


def _string(block: bytes, pos: int) -> tuple[bytes, int]:
    if pos >= len(block):
        raise MalformedError("hpack: string missing")
    huffman = block[pos] & 0x80
    length, pos = _integer(block, pos, 7)
    end = pos + length
    if end > len(block):
        raise MalformedError("hpack: string runs past the block")
    raw = block[pos:end]
    return (huffman_decode(raw) if huffman else raw), end
