"""CryptoStream's in-order append path and its general path give the same bytes.

Oracle: a plain model that writes every chunk into a zero-filled buffer and tracks which
offsets were written, byte by byte.
"""

from __future__ import annotations

import itertools
import random

import pytest

from dotaudit.dissect.quic import CryptoStream


def _model(chunks: list[tuple[int, bytes]]) -> tuple[bytes, int]:
    size = max((off + len(data) for off, data in chunks), default=0)
    buf = bytearray(size)
    seen = [False] * size
    for off, data in chunks:
        buf[off : off + len(data)] = data
        for i in range(off, off + len(data)):
            seen[i] = True
    contiguous = 0
    while contiguous < size and seen[contiguous]:
        contiguous += 1
    return bytes(buf), contiguous


@pytest.mark.parametrize("seed", range(40))
def test_any_order_matches_the_model(seed: int) -> None:
    rng = random.Random(seed)
    body = rng.randbytes(rng.randrange(1, 600))
    cuts = sorted({0, len(body), *(rng.randrange(len(body)) for _ in range(rng.randrange(5)))})
    chunks = [(a, body[a:b]) for a, b in itertools.pairwise(cuts)]
    if seed % 3:
        rng.shuffle(chunks)
    if seed % 4 == 0 and chunks:  # a retransmitted, overlapping chunk
        off, data = chunks[0]
        chunks.append((off, data))
    stream = CryptoStream(4096)
    for off, data in chunks:
        stream.add(off, data)
    expected, contiguous = _model(chunks)
    assert bytes(stream.buf) == expected
    assert stream.contiguous() == contiguous


def test_in_order_appends_then_a_gap_then_the_fill() -> None:
    stream = CryptoStream(100)
    stream.add(0, b"abc")
    stream.add(3, b"def")
    stream.add(10, b"xyz")
    assert stream.contiguous() == 6
    stream.add(6, b"ghij")
    assert bytes(stream.buf) == b"abcdefghijxyz"
    assert stream.contiguous() == 13
