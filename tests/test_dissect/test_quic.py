"""QUIC Initial dissection (dotaudit.dissect.quic).

Oracles: RFC 9001 Appendix A and RFC 9369 Appendix A (keys and the sample client
Initial), RFC 9000 Appendix A.3 (packet numbers), packets protected by aioquic (an
independent QUIC implementation) for the synthetic cases, and for the public corpus
the tshark 4.0 transcripts (section b: SNI, ALPN, the frame completing the
ClientHello), Zeek's quic.log (client_initial_dcid), Suricata's and FoxIO's JA4.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aioquic.quic.crypto import CryptoPair

from dotaudit.dissect.quic import (
    QUIC_VERSIONS,
    InitialKeys,
    QuicClientHello,
    QuicInitialTracker,
    decode_packet_number,
    hkdf_expand_label,
    initial_client_keys,
    looks_like_quic_long_header,
)
from dotaudit.errors import MalformedError
from tests.conftest import corpus_path

# RFC 9001 Appendix A.2: the protected client Initial (DCID 8394c8f03e515708, PN 2).
RFC9001_CLIENT_INITIAL = bytes.fromhex(
    "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11"
    "d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399"
    "1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c"
    "8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212"
    "30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5"
    "457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208"
    "4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec"
    "4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3"
    "485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db"
    "059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c"
    "7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8"
    "9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556"
    "be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74"
    "68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a"
    "c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00"
    "f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632"
    "291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964"
    "25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd"
    "14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff"
    "ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198"
    "e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd"
    "c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73"
    "203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f"
    "cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e"
    "fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade"
    "a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047"
    "90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2"
    "162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4"
    "40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0"
    "6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e"
    "8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0"
    "be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400"
    "54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab"
    "760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9"
    "f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4"
    "056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064"
    "7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241"
    "e221af44860018ab0856972e194cd934"
)

# RFC 9369 Appendix A.2: the same client Initial protected with QUIC version 2.
RFC9369_CLIENT_INITIAL = bytes.fromhex(
    "d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485"
    "dd04de806071bf03dceebfa162e75d6c96058bdbfb127cdfcbf903388e99ad04"
    "9f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d"
    "250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243cf1a"
    "12834e3f249a78d395e0d18f4d766004f1a2674802a747eaa901c3f10cda5500"
    "cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd68"
    "18f6625efce3b6def6ba7e4b37a40f7732e093daa7d52190935b8da58976ff33"
    "12ae50b187c1433c0f028edcc4c2838b6a9bfc226ca4b4530e7a4ccee1bfa2a3"
    "d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd"
    "6f7521a3f6c7d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520"
    "bcfb7966fc49b393f0061d974a2706df8c4a9449f11d7f3d2dcbb90c6b877045"
    "636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452aaa549e27a1f"
    "ac7cf4ed77f322e8fa894b6a83810a34b361901751a6f5eb65a0326e07de7c12"
    "16ccce2d0193f958bb3850a833f7ae432b65bc5a53975c155aa4bcb4f7b2c4e5"
    "4df16efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4"
    "fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a37cbb08b847741c3b"
    "8017c25ca9052ca1079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de7"
    "14d19d61370f8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff9"
    "9c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c446151adfeceb51b91"
    "abfe43960977c87471cf9ad4074d30e10d6a7f03c63bd5d4317f68ff325ba3bd"
    "80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db"
    "848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b614eaed18"
    "d703dd84045a274ae8bfa73379661388d6991fe39b0d93debb41700b41f90a15"
    "c4d526250235ddcd6776fc77bc97e7a417ebcb31600d01e57f32162a8560cacc"
    "7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61"
    "f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e70710"
    "10d3f270121b493ce85054ef58bada42310138fe081adb04e2bd901f2f13458b"
    "3d6758158197107c14ebb193230cd1157380aa79cae1374a7c1e5bbcb80ee23e"
    "06ebfde206bfb0fcbc0edc4ebec309661bdd908d532eb0c6adc38b7ca7331dce"
    "8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d1"
    "34b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1"
    "e86215c2d54e6670e07383a27bbffb5addf47d66aa85a0c6f9f32e59d85a44dd"
    "5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ecabee93dfc6e3"
    "8d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89"
    "d5974ee12e5cf7d5da4d6a31123041f33e61407e76cffcdcfd7e19ba58cf4b53"
    "6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19"
    "9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96b"
    "a18b2faa745b6fe189cf772a9f84cbfc"
)

RFC_DCID = bytes.fromhex("8394c8f03e515708")

# RFC 9001 A.2 (and RFC 9369 A.2): the unprotected payload's CRYPTO frame. The frame
# header is 06 00 40f1 (offset 0, length 241); its data is a ClientHello for example.com.
RFC_CRYPTO_FRAME = bytes.fromhex(
    "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868"
    "04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578"
    "616d706c652e636f6dff01000100000a00080006001d00170018001000070005"
    "04616c706e000500050100000000003300260024001d00209370b2c9caa47fba"
    "baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400"
    "0d0010000e0403050306030203080408050806002d00020101001c0002400100"
    "3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000"
    "75300901100f088394c8f03e51570806048000ffff"
)
RFC_HANDSHAKE = RFC_CRYPTO_FRAME[4:]
"""The ClientHello handshake message: 01 0000ed, then the 237-byte body."""
RFC_HELLO_BODY = RFC_HANDSHAKE[4:]

V1 = 0x00000001
V2 = 0x6B3343CF


def varint(value: int) -> bytes:
    if value < 1 << 6:
        return bytes([value])
    if value < 1 << 14:
        return (value | 0x4000).to_bytes(2, "big")
    if value < 1 << 30:
        return (value | 0x80000000).to_bytes(4, "big")
    return (value | 0xC000000000000000).to_bytes(8, "big")


def crypto_frame(offset: int, data: bytes) -> bytes:
    return b"\x06" + varint(offset) + varint(len(data)) + data


def initial(
    dcid: bytes,
    frames: bytes,
    *,
    pn: int = 0,
    pn_len: int = 2,
    version: int = V1,
    scid: bytes = b"\x0a\x0b\x0c\x0d",
    token: bytes = b"",
    key_dcid: bytes | None = None,
    type_bits: int | None = None,
) -> bytes:
    """A client Initial protected by aioquic (an independent QUIC implementation).

    ``key_dcid`` derives the keys from another DCID than the header carries, as a client
    does after the server picked a new connection ID.
    """
    if type_bits is None:
        type_bits = 1 if version == V2 else 0
    if len(frames) < 20:  # header protection needs a 16-byte sample after the PN
        frames += bytes(20 - len(frames))
    length = pn_len + len(frames) + 16
    header = (
        bytes([0xC0 | (type_bits << 4) | (pn_len - 1)])
        + version.to_bytes(4, "big")
        + bytes([len(dcid)])
        + dcid
        + bytes([len(scid)])
        + scid
        + varint(len(token))
        + token
        + (length | 0x4000).to_bytes(2, "big")
        + (pn & ((1 << (8 * pn_len)) - 1)).to_bytes(pn_len, "big")
    )
    pair = CryptoPair()
    pair.setup_initial(cid=key_dcid or dcid, is_client=True, version=version)
    return pair.encrypt_packet(header, frames, pn)


def long_packet(type_bits: int, dcid: bytes, body: bytes, version: int = V1) -> bytes:
    """An unprotected long-header packet with a Length field (0-RTT or Handshake shape)."""
    return (
        bytes([0xC0 | (type_bits << 4) | 1])
        + version.to_bytes(4, "big")
        + bytes([len(dcid)])
        + dcid
        + b"\x00"
        + varint(len(body))
        + body
    )


def client_datagrams(path: Path) -> dict[tuple[str, int, str, int], list[tuple[int, bytes]]]:
    """UDP payloads per flow, client (first sender) to server only, with 1-based frame numbers."""
    from scapy.all import IP, UDP, IPv6, PcapReader

    flows: dict[tuple[str, int, str, int], list[tuple[int, bytes]]] = {}
    with PcapReader(str(path)) as packets:  # detects pcapng too
        for frame, pkt in enumerate(packets, 1):
            if UDP not in pkt:
                continue
            ip = pkt[IP] if IP in pkt else pkt[IPv6]
            key = (ip.src, pkt[UDP].sport, ip.dst, pkt[UDP].dport)
            if (key[2], key[3], key[0], key[1]) in flows:
                continue  # server to client
            flows.setdefault(key, []).append((frame, bytes(pkt[UDP].payload)))
    return flows


# -- keys and packet protection: RFC 9001 / RFC 9369 Appendix A -----------------------


def test_hkdf_expand_label_rfc9001_a1() -> None:
    # RFC 9001 A.1: initial_secret and client_initial_secret for DCID 8394c8f03e515708.
    import hmac

    initial_secret = hmac.digest(
        bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"), RFC_DCID, "sha256"
    )
    assert initial_secret.hex() == (
        "7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44"
    )
    client = hkdf_expand_label(initial_secret, b"client in", 32)
    assert client.hex() == "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea"
    server = hkdf_expand_label(initial_secret, b"server in", 32)
    assert server.hex() == "3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b"


def test_initial_client_keys_v1_rfc9001_a1() -> None:
    key, iv, hp = initial_client_keys(V1, RFC_DCID)
    assert key.hex() == "1f369613dd76d5467730efcbe3b1a22d"
    assert iv.hex() == "fa044b2f42a3fd3b46fb255c"
    assert hp.hex() == "9f50449e04a0e810283a1e9933adedd2"


def test_initial_client_keys_v2_rfc9369_a1() -> None:
    key, iv, hp = initial_client_keys(V2, RFC_DCID)
    assert key.hex() == "8b1a0bc121284290a29e0971b5cd045d"
    assert iv.hex() == "91f73e2351d8fa91660e909f"
    assert hp.hex() == "45b95e15235d6f45a6b19cbcb0294ba9"


def test_unknown_version_has_no_keys() -> None:
    with pytest.raises(MalformedError):
        initial_client_keys(0x0A0A0A0A, RFC_DCID)


@pytest.mark.parametrize(
    ("packet", "version"), [(RFC9001_CLIENT_INITIAL, V1), (RFC9369_CLIENT_INITIAL, V2)]
)
def test_unprotect_rfc_sample_packet(packet: bytes, version: int) -> None:
    # RFC 9001 A.2 / RFC 9369 A.2: packet number 2, payload = CRYPTO frame + PADDING
    # to 1162 bytes; the PN starts after 18 header bytes.
    opened = InitialKeys(version, RFC_DCID).unprotect(packet, 18)
    assert opened is not None
    pn, payload = opened
    assert pn == 2
    assert payload == RFC_CRYPTO_FRAME + bytes(1162 - len(RFC_CRYPTO_FRAME))


@pytest.mark.parametrize(
    ("packet", "version", "name"),
    [(RFC9001_CLIENT_INITIAL, V1, "v1"), (RFC9369_CLIENT_INITIAL, V2, "v2")],
)
def test_tracker_reads_rfc_sample_client_hello(packet: bytes, version: int, name: str) -> None:
    tracker = QuicInitialTracker()
    hello = tracker.feed(packet)
    assert hello == QuicClientHello(
        version=version, version_name=name, dcid=RFC_DCID, hello_body=RFC_HELLO_BODY
    )
    assert b"example.com" in hello.hello_body
    assert tracker.done
    assert tracker.feed(packet) is None  # returned once only


def test_tampered_rfc_packet_does_not_authenticate() -> None:
    packet = bytearray(RFC9001_CLIENT_INITIAL)
    packet[600] ^= 0x01
    assert InitialKeys(V1, RFC_DCID).unprotect(bytes(packet), 18) is None
    tracker = QuicInitialTracker()
    assert tracker.feed(bytes(packet)) is None
    assert not tracker.done  # a later, intact retransmission can still be read
    assert tracker.feed(RFC9001_CLIENT_INITIAL) is not None


def test_decode_packet_number_rfc9000_a3() -> None:
    # RFC 9000 Appendix A.3's example.
    assert decode_packet_number(0xA82F30EA, 0x9B32, 16) == 0xA82F9B32
    assert decode_packet_number(-1, 2, 32) == 2


# -- header sniffing -------------------------------------------------------------------


def test_versions_table() -> None:
    assert QUIC_VERSIONS[0x00000001] == "v1"
    assert QUIC_VERSIONS[0x6B3343CF] == "v2"
    assert QUIC_VERSIONS[0xFF00001D] == "draft-29"
    assert QUIC_VERSIONS[0xFF000020] == "draft-32"
    assert QUIC_VERSIONS[0] == "negotiation"


def test_looks_like_quic_long_header() -> None:
    assert looks_like_quic_long_header(RFC9001_CLIENT_INITIAL)
    assert looks_like_quic_long_header(RFC9369_CLIENT_INITIAL)
    vn = b"\xc0\x00\x00\x00\x00\x04abcd\x04efgh\x00\x00\x00\x01"
    assert looks_like_quic_long_header(vn)
    assert not looks_like_quic_long_header(b"")
    assert not looks_like_quic_long_header(b"\x40" + RFC9001_CLIENT_INITIAL[1:])  # short
    assert not looks_like_quic_long_header(b"\x80" + RFC9001_CLIENT_INITIAL[1:])  # no fixed bit
    unknown = RFC9001_CLIENT_INITIAL[:1] + b"\x0a\x1a\x2a\x3a" + RFC9001_CLIENT_INITIAL[5:]
    assert not looks_like_quic_long_header(unknown)
    long_cid = RFC9001_CLIENT_INITIAL[:5] + b"\x15" + bytes(40)
    assert not looks_like_quic_long_header(long_cid)
    assert not looks_like_quic_long_header(RFC9001_CLIENT_INITIAL[:10])  # CIDs cut off
    # A DNS query with the QR bit clear does not start with 0xc0.
    assert not looks_like_quic_long_header(bytes.fromhex("12340100000100000000000003777777"))


# -- reassembly across frames, packets and datagrams (aioquic-protected) --------------

DCID = bytes.fromhex("0011223344556677")


def fragments(data: bytes, size: int) -> list[tuple[int, bytes]]:
    return [(o, data[o : o + size]) for o in range(0, len(data), size)]


def test_out_of_order_overlapping_crypto_frames_in_one_packet() -> None:
    # Chromium's shape: CRYPTO pieces out of order, PING and PADDING between them.
    pieces = fragments(RFC_HANDSHAKE, 37)
    frames = b"\x01"
    for offset, data in reversed(pieces):
        frames += crypto_frame(offset, data) + b"\x00\x00\x01"
    frames += crypto_frame(10, RFC_HANDSHAKE[10:90])  # overlap, same bytes
    frames += bytes(900)
    hello = QuicInitialTracker().feed(initial(DCID, frames))
    assert hello is not None
    assert hello.hello_body == RFC_HELLO_BODY
    assert hello.dcid == DCID


def test_ack_and_connection_close_frames_are_skipped() -> None:
    ack = b"\x02" + varint(5) + varint(100) + varint(2) + varint(1) + b"\x00\x01\x00\x00"
    ack_ecn = b"\x03" + varint(7) + varint(0) + varint(0) + varint(3) + varint(1) * 3
    close = b"\x1c" + varint(0x0A) + varint(0x06) + varint(4) + b"oops"
    close_app = b"\x1d" + varint(1) + varint(0)
    frames = ack + ack_ecn + close + close_app + crypto_frame(0, RFC_HANDSHAKE) + bytes(50)
    hello = QuicInitialTracker().feed(initial(DCID, frames))
    assert hello is not None
    assert hello.hello_body == RFC_HELLO_BODY


def test_client_hello_across_datagrams_out_of_order() -> None:
    parts = fragments(RFC_HANDSHAKE, 100)  # three pieces
    assert len(parts) == 3
    order = [2, 0, 1]
    tracker = QuicInitialTracker()
    results = [
        tracker.feed(initial(DCID, crypto_frame(*parts[i]) + bytes(30), pn=n))
        for n, i in enumerate(order)
    ]
    assert results[0] is None
    assert results[1] is None
    assert results[2] is not None
    assert tracker.done
    assert results[2].hello_body == RFC_HELLO_BODY


def test_later_initials_use_the_first_dcid_keys() -> None:
    # After the server's Initial the client addresses the server's SCID, but Initial
    # keys stay those of the first DCID (RFC 9001 §5.2).
    first, second = fragments(RFC_HANDSHAKE, 150)
    server_cid = bytes.fromhex("a1a2a3a4")
    tracker = QuicInitialTracker()
    assert tracker.feed(initial(DCID, crypto_frame(*first), pn=0)) is None
    hello = tracker.feed(initial(server_cid, crypto_frame(*second), pn=1, key_dcid=DCID))
    assert hello is not None
    assert hello.dcid == DCID
    assert hello.hello_body == RFC_HELLO_BODY


def test_retry_rederives_keys_from_the_new_dcid() -> None:
    first, _ = fragments(RFC_HANDSHAKE, 150)
    retry_cid = bytes.fromhex("feedfacecafebeef")
    tracker = QuicInitialTracker()
    assert tracker.feed(initial(DCID, crypto_frame(*first))) is None
    # After a Retry the client starts over with the token and keys of the new DCID.
    again = initial(retry_cid, crypto_frame(0, RFC_HANDSHAKE), token=b"retry-token" * 3)
    hello = tracker.feed(again)
    assert hello is not None
    assert hello.dcid == retry_cid
    assert hello.hello_body == RFC_HELLO_BODY


def test_coalesced_packets_and_datagram_padding() -> None:
    zero_rtt = long_packet(1, DCID, bytes(40))
    handshake = long_packet(2, DCID, bytes(30))
    first, second = fragments(RFC_HANDSHAKE, 150)
    # A 0-RTT packet before the Initial, a Handshake one after, then zero padding.
    dgram1 = zero_rtt + initial(DCID, crypto_frame(*first)) + handshake + bytes(200)
    # Two Initials coalesced in one datagram, with a short-header packet at the end.
    tail = initial(DCID, crypto_frame(*second), pn=2)
    dgram2 = handshake + initial(DCID, b"\x01" + bytes(30), pn=1) + tail + b"\x41" + bytes(30)
    tracker = QuicInitialTracker()
    assert tracker.feed(dgram1) is None
    hello = tracker.feed(dgram2)
    assert hello is not None
    assert hello.hello_body == RFC_HELLO_BODY


@pytest.mark.parametrize("pn_len", [1, 2, 3, 4])
def test_packet_number_lengths(pn_len: int) -> None:
    packet = initial(DCID, crypto_frame(0, RFC_HANDSHAKE), pn=7, pn_len=pn_len)
    hello = QuicInitialTracker().feed(packet)
    assert hello is not None
    assert hello.hello_body == RFC_HELLO_BODY


def test_v2_packet_type_bits() -> None:
    # RFC 9369 §3.2: Initial is 0b01 in v2; 0b00 is Retry there and must not be read.
    good = initial(DCID, crypto_frame(0, RFC_HANDSHAKE), version=V2)
    assert QuicInitialTracker().feed(good) is not None
    as_retry = initial(DCID, crypto_frame(0, RFC_HANDSHAKE), version=V2, type_bits=0)
    assert QuicInitialTracker().feed(as_retry) is None
    # v1 type bits on a v2 packet (0b00) likewise; v2's Initial bits on v1 mean 0-RTT.
    v1_as_zero_rtt = initial(DCID, crypto_frame(0, RFC_HANDSHAKE), type_bits=1)
    assert QuicInitialTracker().feed(v1_as_zero_rtt) is None


def test_server_initial_is_ignored() -> None:
    pair = CryptoPair()
    pair.setup_initial(cid=DCID, is_client=False, version=V1)
    frames = crypto_frame(0, b"\x02\x00\x00\x04abcd") + bytes(40)
    header = b"\xc1\x00\x00\x00\x01\x00\x04scid\x00" + (2 + len(frames) + 16 | 0x4000).to_bytes(
        2, "big"
    )
    server_initial = pair.encrypt_packet(header + b"\x00\x01", frames, 1)
    tracker = QuicInitialTracker()
    assert tracker.feed(server_initial) is None
    assert not tracker.done


# -- limits and failures ---------------------------------------------------------------


def test_done_is_a_cheap_no_op_and_gives_up_after_max_packets() -> None:
    tracker = QuicInitialTracker(max_packets=3)
    short = b"\x41" + bytes(50)
    assert tracker.feed(short) is None
    assert tracker.feed(short) is None
    assert not tracker.done
    assert tracker.feed(short) is None
    assert tracker.done
    assert tracker.feed(RFC9001_CLIENT_INITIAL) is None  # gave up before it came


def test_setting_done_abandons_the_flow() -> None:
    first, _ = fragments(RFC_HANDSHAKE, 150)
    completing = initial(DCID, crypto_frame(0, RFC_HANDSHAKE), pn=1)
    # Control: left alone, a tracker completes the ClientHello from the same two packets.
    control = QuicInitialTracker()
    assert control.feed(initial(DCID, crypto_frame(*first))) is None
    hello = control.feed(completing)
    assert hello is not None and control.done
    abandoned = QuicInitialTracker()
    assert abandoned.feed(initial(DCID, crypto_frame(*first))) is None
    abandoned.done = True  # what the dispatcher does when it gives up on a flow
    assert abandoned.feed(completing) is None


def test_unknown_frame_in_initial_is_malformed() -> None:
    stream_frame = b"\x08\x00\x03abc"
    with pytest.raises(MalformedError, match="frame type 0x8"):
        QuicInitialTracker().feed(initial(DCID, stream_frame + bytes(30)))


def test_crypto_beyond_cap_is_malformed() -> None:
    tracker = QuicInitialTracker(max_crypto=1024)
    with pytest.raises(MalformedError, match="beyond 1024"):
        tracker.feed(initial(DCID, crypto_frame(1000, bytes(100))))
    assert tracker.done


def test_declared_client_hello_larger_than_cap_is_malformed() -> None:
    tracker = QuicInitialTracker(max_crypto=1024)
    with pytest.raises(MalformedError, match="exceeds the cap"):
        tracker.feed(initial(DCID, crypto_frame(0, b"\x01\x01\x00\x00" + bytes(40))))
    assert tracker.done


def test_non_client_hello_handshake_is_malformed() -> None:
    tracker = QuicInitialTracker()
    with pytest.raises(MalformedError, match="handshake type 2"):
        tracker.feed(initial(DCID, crypto_frame(0, b"\x02\x00\x00\x04abcd")))
    assert tracker.done


def test_too_many_crypto_fragments_is_malformed() -> None:
    # Every other byte: thousands of disjoint ranges would make each insert slow.
    frames = b"".join(crypto_frame(o, b"x") for o in range(2, 1200, 2))
    with pytest.raises(MalformedError, match="too many fragments"):
        QuicInitialTracker().feed(initial(DCID, frames))


def test_structurally_broken_headers() -> None:
    good = initial(DCID, crypto_frame(0, RFC_HANDSHAKE))
    with pytest.raises(MalformedError):
        QuicInitialTracker().feed(good[:-40])  # Length runs past the datagram
    with pytest.raises(MalformedError):
        QuicInitialTracker().feed(good[:5] + b"\x30" + good[6:])  # DCID length 48
    with pytest.raises(MalformedError):
        QuicInitialTracker().feed(good[:4])
    # An unknown version is not ours to judge.
    assert QuicInitialTracker().feed(good[:1] + b"\x5a\x5a\x5a\x5a" + good[5:]) is None


# -- public corpus ---------------------------------------------------------------------

TSHARK_LONG_ALPN = (
    "h3-34|hq-34|h3-33|hq-33|h3-32|hq-32|h3-31|hq-31|h3-29|hq-29|h3-30|hq-30|"
    "h3-28|hq-28|h3-27|hq-27|h3|hq-interop"
)

CORPUS_CASES = [
    # path, tshark (b) frame completing the ClientHello, version, SNI, ALPN, Zeek DCID
    pytest.param(
        "zeek/quic-curl-http3/curl-8.1.2-dev-http3-www-google-de.pcap",
        1,
        "v1",
        "www.google.de",
        ("h3", "h3-29", "h3-28", "h3-27"),
        "815d62c70884f4b51e8ccadd5beed372",
        id="curl-http3",
    ),
    pytest.param(
        "zeek/quic-chromium-fragmented-crypto/chromium-115.0.5790.110-google-de-fragmented.pcap",
        1,
        "v1",
        "www.google.de",
        ("h3",),
        "5a37463b0eb7cc5d",
        id="chromium-fragmented",
    ),
    pytest.param(
        "zeek/quic-multiple-initial-crypto/quic-multiple-initial-fragmented-crypto.pcap",
        3,
        "v1",
        "googleads.g.doubleclick.net",
        ("h3",),
        None,
        id="multiple-initials",
    ),
    pytest.param(
        "ndpi/quic-ch-in-multiple-packets/quic_frags_ch_in_multiple_packets.pcapng",
        2,
        "v1",
        None,
        # tshark (b) joins the ALPN list with "|"
        tuple(TSHARK_LONG_ALPN.split("|")),
        None,
        id="ch-in-two-packets",
    ),
    pytest.param(
        "zeek/quicv2-http3/quicv2-http3-443.pcap",
        1,
        "v2",
        None,
        ("h3",),
        "bdf0c5b27927cc667e58d95b",
        id="quicv2-zeek",
    ),
    pytest.param("ndpi/quic-v2-sni/quic-v2.pcapng", 1, "v2", "test", ("h3",), None, id="v2-ndpi"),
    pytest.param(
        "suricata-verify/ja4-tls-quic/input.pcap",
        47,
        "v1",
        "cloudflare-quic.com",
        ("h3",),
        None,
        id="ja4-tls-quic",
    ),
    pytest.param(
        "suricata-verify/quic-ietf-msquic/input.pcap",
        1,
        "v1",
        "msquic.net",
        ("h3-29",),
        None,
        id="msquic",
    ),
    # tshark finds this one only with -d udp.port==853,quic (MANIFEST note).
    pytest.param(
        "zeek/quic-doq-853/quicdoq.pcap", 1, "v1", None, ("doq",), "fda05288ab9ff546", id="doq-853"
    ),
    pytest.param(
        "ndpi/doq-adguard-784/doq_adguard.pcapng",
        1,
        "draft-29",
        "dns.adguard.com",
        ("doq-i00",),
        None,
        id="doq-draft29",
    ),
    pytest.param(
        "ndpi/doq-localhost-784/doq.pcapng",
        1,
        "draft-32",
        None,
        ("doq-i00",),
        None,
        id="doq-draft32",
    ),
]


def corpus_hellos(relative: str) -> list[tuple[int, QuicClientHello]]:
    """Every ClientHello the tracker finds, one tracker per client flow, feeding all."""
    found: list[tuple[int, QuicClientHello]] = []
    for datagrams in client_datagrams(corpus_path(relative)).values():
        if not looks_like_quic_long_header(datagrams[0][1]):
            continue
        tracker = QuicInitialTracker()
        for frame, payload in datagrams:
            hello = tracker.feed(payload)
            if hello is not None:
                found.append((frame, hello))
        assert tracker.done
    return sorted(found, key=lambda item: item[0])


@pytest.mark.corpus
@pytest.mark.parametrize(("path", "frame", "version", "sni", "alpn", "dcid"), CORPUS_CASES)
def test_corpus_client_hello(
    path: str,
    frame: int,
    version: str,
    sni: str | None,
    alpn: tuple[str, ...],
    dcid: str | None,
) -> None:
    from dotaudit.dissect.tls import parse_client_hello

    hellos = corpus_hellos(path)
    assert len(hellos) == 1  # tshark (b): one QUIC ClientHello
    got_frame, hello = hellos[0]
    assert got_frame == frame
    assert hello.version_name == version
    if dcid is not None:
        assert hello.dcid.hex() == dcid  # Zeek quic.log client_initial_dcid
    assert hello.hello_body[:2] == b"\x03\x03"  # legacy_version, tshark 0x0303
    ch = parse_client_hello(hello.hello_body)
    assert ch.sni == sni
    assert ch.alpn == alpn


@pytest.mark.corpus
def test_corpus_multiple_initials_offers_ech() -> None:
    from dotaudit.dissect.tls import parse_client_hello

    # tshark (b3): the ClientHello carries extension 0xfe0d.
    ((_, hello),) = corpus_hellos(
        "zeek/quic-multiple-initial-crypto/quic-multiple-initial-fragmented-crypto.pcap"
    )
    assert parse_client_hello(hello.hello_body).ech


JA4_QUIC_SNIS = [
    # suricata-verify/ja4-quic/expected/README.md, FoxIO ja4 output in stream order
    "www.blogger.com",
    "socpuppet.blogspot.com",
    "apis.google.com",
    "www.blogger.com",
    "apis.google.com",
    "www.google.com",
    "www.gstatic.com",
    "fonts.gstatic.com",
    "4.bp.blogspot.com",
    "1.bp.blogspot.com",
    "2.bp.blogspot.com",
]


@pytest.mark.corpus
def test_corpus_ja4_quic_eleven_flows() -> None:
    from dotaudit.dissect.tls import parse_client_hello

    hellos = corpus_hellos("suricata-verify/ja4-quic/input.pcap")
    assert [frame for frame, _ in hellos] == list(range(1, 12))
    assert [parse_client_hello(h.hello_body).sni for _, h in hellos] == JA4_QUIC_SNIS
    assert {parse_client_hello(h.hello_body).alpn for _, h in hellos} == {("h3",)}


SURICATA_QUIC_JA4 = "q13d0310h3_55b375c5d22e_cd85d2d88918"


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("path", "count"),
    [("suricata-verify/ja4-quic/input.pcap", 11), ("suricata-verify/ja4-tls-quic/input.pcap", 1)],
)
def test_corpus_ja4(path: str, count: int) -> None:
    # Suricata test.yaml / FoxIO ja4 reference output in expected/README.md.
    ja4 = pytest.importorskip("dotaudit.dissect.fingerprint").ja4
    from dotaudit.dissect.tls import parse_client_hello

    hellos = corpus_hellos(path)
    assert len(hellos) == count
    for _, hello in hellos:
        assert ja4(parse_client_hello(hello.hello_body), quic=True) == SURICATA_QUIC_JA4


@pytest.mark.corpus
def test_corpus_doq_adguard_ja4_against_ndpi() -> None:
    # nDPI reports q13d0309do_55b375c5d22e_f68d9329452a. The FoxIO JA4 spec takes the
    # first and last characters of the first ALPN value ("doq-i00" -> "d0"); nDPI took
    # the first two ("do"). The cipher and extension hashes must agree with nDPI.
    ja4 = pytest.importorskip("dotaudit.dissect.fingerprint").ja4
    from dotaudit.dissect.tls import parse_client_hello

    ((_, hello),) = corpus_hellos("ndpi/doq-adguard-784/doq_adguard.pcapng")
    assert ja4(parse_client_hello(hello.hello_body), quic=True) == (
        "q13d0309d0_55b375c5d22e_f68d9329452a"
    )
