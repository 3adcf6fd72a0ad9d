"""Hostile input for the QUIC Initial tracker: it may only return None or a
ClientHello, or raise MalformedError, and its memory stays within its caps.

Frame-level fuzzing goes through real packet protection (aioquic encrypts the
generated frames), so the frame parser and the reassembly see the hostile bytes.
"""

from __future__ import annotations

import itertools
import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dotaudit.dissect.quic import QuicClientHello, QuicInitialTracker
from dotaudit.errors import MalformedError
from tests.fuzzing import examples
from tests.test_dissect.test_quic import (
    DCID,
    RFC9001_CLIENT_INITIAL,
    RFC9369_CLIENT_INITIAL,
    RFC_HANDSHAKE,
    crypto_frame,
    initial,
    varint,
)

FUZZ = settings(
    max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
AIOQUIC_INITIAL = initial(DCID, crypto_frame(0, RFC_HANDSHAKE) + bytes(900), token=b"tok")
REAL_PACKETS = [RFC9001_CLIENT_INITIAL, RFC9369_CLIENT_INITIAL, AIOQUIC_INITIAL]


def feed_all(tracker: QuicInitialTracker, datagrams: list[bytes]) -> list[QuicClientHello]:
    found: list[QuicClientHello] = []
    for datagram in datagrams:
        try:
            hello = tracker.feed(datagram)
        except MalformedError:
            continue
        if hello is not None:
            assert isinstance(hello, QuicClientHello)
            found.append(hello)
    assert len(found) <= 1  # the ClientHello is returned once at most
    return found


@FUZZ
@given(st.lists(st.binary(max_size=1500), max_size=8))
def test_random_datagrams(datagrams: list[bytes]) -> None:
    feed_all(QuicInitialTracker(), datagrams)


LONG_HEADER_PREFIX = st.sampled_from(
    [
        b"\xc0\x00\x00\x00\x01",
        b"\xd0\x6b\x33\x43\xcf",
        b"\xc3\xff\x00\x00\x1d",
        b"\xe0\x00\x00\x00\x01",
    ]
)


@FUZZ
@given(LONG_HEADER_PREFIX, st.binary(max_size=1400))
def test_random_bytes_behind_a_known_long_header(prefix: bytes, rest: bytes) -> None:
    feed_all(QuicInitialTracker(), [prefix + rest])


@FUZZ
@given(st.sampled_from(REAL_PACKETS), st.integers(min_value=0, max_value=1199))
def test_truncated_real_initials(packet: bytes, cut: int) -> None:
    tracker = QuicInitialTracker()
    assert feed_all(tracker, [packet[: cut % len(packet)]]) == []


@FUZZ
@given(
    st.sampled_from(REAL_PACKETS),
    st.lists(st.tuples(st.integers(0, 1199), st.integers(0, 7)), min_size=1, max_size=4),
)
def test_bit_flipped_real_initials(packet: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(packet)
    for pos, bit in flips:
        data[pos % len(data)] ^= 1 << bit
    found = feed_all(QuicInitialTracker(), [bytes(data)])
    if bytes(data) != packet:
        # Any change breaks authentication or the header; it can never yield a hello
        # other than the one the unchanged packet holds.
        assert found == [] or found[0].hello_body == RFC_HANDSHAKE[4:]


FRAME = st.one_of(
    st.binary(max_size=40),  # raw garbage
    st.builds(
        lambda o, d: crypto_frame(o, d),
        st.integers(0, 70_000),
        st.binary(max_size=300),
    ),
    st.builds(
        lambda o, n: b"\x06" + varint(o) + varint(n),  # CRYPTO lying about its length
        st.integers(0, (1 << 62) - 1),
        st.integers(0, (1 << 62) - 1),
    ),
    st.builds(
        lambda a, n: b"\x02" + varint(a) + b"\x00" + varint(n) + b"\x00",  # ACK range count
        st.integers(0, 1 << 30),
        st.integers(0, (1 << 62) - 1),
    ),
    st.sampled_from([b"\x00", b"\x01", b"\x03", b"\x1c", b"\x1d\x00\x7f", b"\x08", b"\x40\x06"]),
)


@FUZZ
@given(st.lists(st.lists(FRAME, max_size=12), min_size=1, max_size=4))
def test_hostile_frames_inside_authentic_initials(packets: list[list[bytes]]) -> None:
    tracker = QuicInitialTracker(max_crypto=64 * 1024)
    datagrams = [initial(DCID, b"".join(frames), pn=n) for n, frames in enumerate(packets)]
    feed_all(tracker, datagrams)


def test_memory_stays_within_the_crypto_cap() -> None:
    cap = 64 * 1024
    # Every packet writes one byte near the cap, in a different place: the worst
    # case for a reassembly buffer, plus offsets far beyond the cap.
    datagrams = [
        initial(DCID, crypto_frame(cap - 1 - 3 * i, b"x") + bytes(20), pn=i) for i in range(30)
    ]
    datagrams.append(initial(DCID, crypto_frame((1 << 62) - 10, b"y"), pn=31))
    tracemalloc.start()
    try:
        trackers = [QuicInitialTracker(max_crypto=cap) for _ in range(10)]
        for tracker in trackers:
            feed_all(tracker, datagrams)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(t.done for t in trackers)  # the far offset is hopeless: buffers released
    assert peak < 10 * cap + 512 * 1024


@st.composite
def shuffled_pieces(draw: st.DrawFn) -> list[list[tuple[int, bytes]]]:
    """RFC_HANDSHAKE cut at random points, pieces duplicated, overlapped and shuffled
    into 1-4 packets."""
    size = len(RFC_HANDSHAKE)
    cuts = sorted(draw(st.sets(st.integers(1, size - 1), max_size=20)))
    bounds = [0, *cuts, size]
    pieces = [(a, RFC_HANDSHAKE[a:b]) for a, b in itertools.pairwise(bounds)]
    extra = draw(st.lists(st.tuples(st.integers(0, size - 1), st.integers(1, 80)), max_size=5))
    pieces += [(a, RFC_HANDSHAKE[a : a + n]) for a, n in extra]
    pieces = draw(st.permutations(pieces))
    packets = draw(st.integers(1, 4))
    return [pieces[i::packets] for i in range(packets)]


@FUZZ
@given(shuffled_pieces())
def test_any_fragmentation_reassembles_the_client_hello(
    packets: list[list[tuple[int, bytes]]],
) -> None:
    tracker = QuicInitialTracker()
    results = []
    for n, pieces in enumerate(packets):
        frames = b"".join(crypto_frame(o, d) + b"\x01" for o, d in pieces) or b"\x01"
        results.append(tracker.feed(initial(DCID, frames, pn=n)))
    hellos = [r for r in results if r is not None]
    assert len(hellos) == 1
    assert hellos[0].hello_body == RFC_HANDSHAKE[4:]
