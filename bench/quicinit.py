"""Real, encrypted QUIC v1 Initial packets (RFC 9000 section 17.2.2, RFC 9001 section 5).

Readers must derive the Initial keys from the Destination Connection ID and decrypt
to see the ClientHello, exactly as with live traffic.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

INITIAL_SALT_V1 = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")


def _expand_label(secret: bytes, label: str, length: int) -> bytes:
    full = b"tls13 " + label.encode()
    info = struct.pack("!HB", length, len(full)) + full + b"\x00"
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(secret, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def initial_keys(dcid: bytes, server: bool) -> tuple[bytes, bytes, bytes]:
    """(key, iv, hp) for the client's or server's Initial packets."""
    initial = hmac.new(INITIAL_SALT_V1, dcid, hashlib.sha256).digest()
    secret = _expand_label(initial, "server in" if server else "client in", 32)
    return (
        _expand_label(secret, "quic key", 16),
        _expand_label(secret, "quic iv", 12),
        _expand_label(secret, "quic hp", 16),
    )


def varint(v: int) -> bytes:
    if v < 0x40:
        return bytes([v])
    if v < 0x4000:
        return struct.pack("!H", 0x4000 | v)
    if v < 0x40000000:
        return struct.pack("!I", 0x80000000 | v)
    return struct.pack("!Q", 0xC000000000000000 | v)


def crypto_frame(offset: int, data: bytes) -> bytes:
    return b"\x06" + varint(offset) + varint(len(data)) + data


def ack_frame(largest: int) -> bytes:
    return b"\x02" + varint(largest) + varint(0) + varint(0) + varint(0)


def protect_long(
    packet_type: int,
    dcid: bytes,
    scid: bytes,
    pn: int,
    frames: bytes,
    keys: tuple[bytes, bytes, bytes],
    min_size: int = 0,
    version: int = 1,
) -> bytes:
    """Encrypt and header-protect one long-header packet; PADDING up to ``min_size``."""
    key, iv, hp = keys
    pn_len = 2
    token = b"\x00" if packet_type == 0 else b""
    head_fixed = (
        struct.pack("!BI", 0xC0 | (packet_type << 4) | (pn_len - 1), version)
        + bytes([len(dcid)])
        + dcid
        + bytes([len(scid)])
        + scid
        + token
    )
    overhead = len(head_fixed) + 2 + pn_len + 16
    if min_size > overhead + len(frames):
        frames += bytes(min_size - overhead - len(frames))
    if len(frames) < 4:  # header protection samples 16 bytes starting 4 after the PN
        frames += bytes(4 - len(frames))
    header = head_fixed + struct.pack("!H", 0x4000 | (pn_len + len(frames) + 16))
    header += pn.to_bytes(pn_len, "big")
    nonce = (int.from_bytes(iv, "big") ^ pn).to_bytes(12, "big")
    sealed = AESGCM(key).encrypt(nonce, frames, header)
    pn_offset = len(header) - pn_len
    sample = sealed[4 - pn_len : 4 - pn_len + 16]
    encryptor = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = encryptor.update(sample) + encryptor.finalize()
    first = bytes([header[0] ^ (mask[0] & 0x0F)])
    pn_bytes = bytes(b ^ m for b, m in zip(header[pn_offset:], mask[1 : 1 + pn_len], strict=True))
    return first + header[1:pn_offset] + pn_bytes + sealed


def transport_params(rng_bytes: bytes) -> bytes:
    """A plausible Chrome-like transport_parameters extension body."""

    def param(pid: int, value: bytes) -> bytes:
        return varint(pid) + varint(len(value)) + value

    return b"".join(
        [
            param(0x01, varint(30000)),  # max_idle_timeout
            param(0x03, varint(1472)),  # max_udp_payload_size
            param(0x04, varint(15728640)),  # initial_max_data
            param(0x05, varint(6291456)),
            param(0x06, varint(6291456)),
            param(0x07, varint(6291456)),
            param(0x08, varint(100)),
            param(0x09, varint(103)),
            param(0x0F, rng_bytes[:8]),  # initial_source_connection_id
            param(0x20, varint(65536)),  # max_datagram_frame_size
        ]
    )


def client_initials(
    dcid: bytes, scid: bytes, hello: bytes, first_pn: int = 0, max_crypto: int = 1100
) -> list[bytes]:
    """The client's first flight: ``hello`` in CRYPTO frames over as many padded 1200+
    byte Initials as needed (large post-quantum hellos take two)."""
    keys = initial_keys(dcid, server=False)
    out = []
    for i, off in enumerate(range(0, len(hello), max_crypto)):
        frames = crypto_frame(off, hello[off : off + max_crypto])
        out.append(protect_long(0, dcid, scid, first_pn + i, frames, keys, min_size=1250))
    return out


def server_initial(
    odcid: bytes, dcid: bytes, scid: bytes, server_hello: bytes, handshake_blob: bytes
) -> bytes:
    """Server Initial (ACK + ServerHello) coalesced with a Handshake packet (opaque)."""
    keys = initial_keys(odcid, server=True)
    initial = protect_long(0, dcid, scid, 0, ack_frame(0) + crypto_frame(0, server_hello), keys)
    hs_header = (
        struct.pack("!BI", 0xE1, 1)
        + bytes([len(dcid)])
        + dcid
        + bytes([len(scid)])
        + scid
        + struct.pack("!H", 0x4000 | len(handshake_blob))
    )
    return initial + hs_header + handshake_blob
