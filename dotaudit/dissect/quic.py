"""QUIC client Initial packets: remove the protection and reassemble the ClientHello.

Initial packets are encrypted with keys anyone can derive from the client's first
Destination Connection ID (RFC 9001 §5.2, RFC 9369 §3.3), so a passive observer can
read the TLS ClientHello (SNI, ALPN) that opens every QUIC connection. The ClientHello
may span several CRYPTO frames, packets and datagrams, in any order.

One :class:`QuicInitialTracker` follows the client direction of one UDP flow. It does
the costly work (AES-GCM) only for long-header Initial packets and becomes a cheap
no-op once the ClientHello is complete or after ``max_packets`` datagrams.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dotaudit.errors import MalformedError

V1 = 0x00000001
V2 = 0x6B3343CF
NEGOTIATION = 0x00000000

_SALT_V1 = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
_SALT_V2 = bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9")
_SALT_DRAFT_29 = bytes.fromhex("afbfec289993d24c9e9786f19c6111e04390a899")
_SALT_DRAFT_23 = bytes.fromhex("c3eef712c72ebb5a11a7d2432bb46365bef9f502")

_DRAFT_BASE = 0xFF000000
_DRAFTS = range(23, 35)
"""IETF drafts whose long header and Initial protection match v1 (only the salt differs)."""

QUIC_VERSIONS: dict[int, str] = {
    V1: "v1",
    V2: "v2",
    NEGOTIATION: "negotiation",
    **{_DRAFT_BASE + n: f"draft-{n}" for n in _DRAFTS},
}


def _salt(version: int) -> bytes | None:
    if version == V1:
        return _SALT_V1
    if version == V2:
        return _SALT_V2
    draft = version - _DRAFT_BASE
    if draft in _DRAFTS:
        if draft <= 28:
            return _SALT_DRAFT_23
        if draft <= 32:
            return _SALT_DRAFT_29
        return _SALT_V1  # drafts 33 and 34 already used the v1 salt
    return None


_DECRYPTABLE = frozenset(v for v in QUIC_VERSIONS if _salt(v) is not None)


def quic_version_name(version: int) -> str:
    """A known version's name, else the version as seen on the wire: ``0x1a2a3a4a``
    (the reserved ``0x?a?a?a?a`` versions, RFC 9000 §15, force version negotiation)."""
    return QUIC_VERSIONS.get(version) or f"0x{version:08x}"


_DRAFT_29 = _DRAFT_BASE + 29
_GUESSES = (V1, _DRAFT_29)


def _key_versions(version: int) -> tuple[int, ...]:
    """The versions whose Initial keys may protect ``version``'s Initials: its own, or
    for a version we do not know, v1's and then draft-29's. A client that opens with a
    reserved or unknown version still sends a ClientHello in the v1 header layout, with
    keys it picks: aioquic takes v1's, tshark assumes draft-29's for the reserved
    versions. Authentication tells which, if any, held."""
    return (version,) if version in _DECRYPTABLE else _GUESSES


MAX_CID = 20
_INITIAL_V1 = 0
_INITIAL_V2 = 1
_RETRY_V1 = 3
_RETRY_V2 = 0
_MAX_RANGES = 256
"""Distinct CRYPTO byte ranges kept before a flow counts as hostile."""
_MAX_DERIVATIONS = 4
"""Key derivations per flow: the first DCID plus a few Retry / version changes."""
_NOT_ZERO = re.compile(rb"[^\x00]")


def opens_as_unknown_version_initial(data: bytes) -> bool:
    """Does ``data`` start with a client Initial of a version we do not know (a reserved
    one, say) that authenticates under the v1 keys? Used to classify a flow whose first
    datagram :func:`looks_like_quic_long_header` turned down: only an authenticated
    packet makes it QUIC, so no other traffic is taken for QUIC by this."""
    if len(data) < 7 or data[0] & 0xF0 != 0xC0:  # long header, fixed bit, v1 Initial type
        return False
    (version,) = struct.unpack_from("!I", data, 1)
    if version in QUIC_VERSIONS:
        return False
    try:
        return QuicInitialTracker(max_packets=1).opens(data)
    except MalformedError:
        return False


def looks_like_quic_long_header(data: bytes) -> bool:
    """Cheap header-only test: a QUIC long header of a version we know, sane CIDs."""
    if len(data) < 7 or data[0] & 0xC0 != 0xC0:
        return False
    (version,) = struct.unpack_from("!I", data, 1)
    if version not in QUIC_VERSIONS:
        return False
    dcid_len = data[5]
    if dcid_len > MAX_CID or len(data) < 7 + dcid_len:
        return False
    scid_len = data[6 + dcid_len]
    return scid_len <= MAX_CID and len(data) >= 7 + dcid_len + scid_len


class QuicClientHello(NamedTuple):
    # A named tuple, not a frozen dataclass: made once per QUIC flow, and a frozen
    # dataclass's __init__ (one object.__setattr__ per field) costs six times more.
    version: int
    version_name: str
    dcid: bytes
    """The DCID the Initial keys were derived from (the client's first, or post-Retry)."""
    hello_body: bytes
    """The ClientHello handshake body, without the 4-byte handshake header."""


class InitialKeys:
    """Client Initial packet protection for one (version, DCID)."""

    __slots__ = ("aead", "dcid", "hp", "iv", "largest_pn", "version")

    def __init__(self, version: int, dcid: bytes, keys_version: int | None = None) -> None:
        """Keys for ``version``'s Initials to ``dcid``, derived as ``keys_version``'s
        (by default the version's own)."""
        key, iv, hp_key = initial_client_keys(keys_version or version, dcid)
        self.version = version
        self.dcid = dcid
        self.aead = AESGCM(key)
        self.iv = int.from_bytes(iv, "big")
        self.hp: CipherContext = Cipher(algorithms.AES(hp_key), _ECB).encryptor()
        self.largest_pn = -1

    def unprotect(self, packet: bytes, pn_offset: int) -> tuple[int, bytes] | None:
        """Packet number and plaintext of ``packet`` (one whole long-header packet).

        None when the packet does not authenticate under these keys.
        """
        if len(packet) < pn_offset + 4 + 16:
            raise MalformedError("QUIC packet too short for a header protection sample")
        mask = self.hp.update(packet[pn_offset + 4 : pn_offset + 20])
        first = packet[0] ^ (mask[0] & 0x0F)
        pn_len = (first & 0x03) + 1
        pn_end = pn_offset + pn_len
        truncated = int.from_bytes(packet[pn_offset:pn_end], "big") ^ int.from_bytes(
            mask[1 : 1 + pn_len], "big"
        )
        header = bytes((first,)) + packet[1:pn_offset] + truncated.to_bytes(pn_len, "big")
        largest = self.largest_pn
        # With no packet yet the expected number is 0 and decoding returns the truncated
        # value as is: skip the call for the first Initial, the one most flows send.
        pn = truncated if largest < 0 else decode_packet_number(largest, truncated, pn_len * 8)
        nonce = (self.iv ^ pn).to_bytes(12, "big")
        try:
            plain = self.aead.decrypt(nonce, packet[pn_end:], header)
        except InvalidTag:
            return None
        if pn > largest:
            self.largest_pn = pn
        return pn, plain


_ECB = modes.ECB()


def initial_client_keys(version: int, dcid: bytes) -> tuple[bytes, bytes, bytes]:
    """AEAD key, IV and header-protection key of the client's Initial packets."""
    salt_pads = _SALT_PADS.get(version)
    if salt_pads is None:
        salt = _salt(version)
        if salt is None:
            raise MalformedError(f"no Initial salt for QUIC version {version:#010x}")
        salt_pads = _SALT_PADS[version] = _hmac_pads(salt)
    initial_secret = _hmac(salt_pads, dcid)  # HKDF-Extract
    client_secret = _hmac_once(initial_secret, _INFO_CLIENT_IN)
    key_info, iv_info, hp_info = _INFO_V2 if version == V2 else _INFO_V1
    pads = _hmac_pads(client_secret)
    return _hmac(pads, key_info)[:16], _hmac(pads, iv_info)[:12], _hmac(pads, hp_info)[:16]


# One Initial key derivation per QUIC flow is seven HMAC-SHA256 computations. The salt is
# fixed per version and three labels share the client secret as key, so the keyed
# inner/outer hash states are computed once and copied (RFC 2104).
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


def _hmac_pads(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    block = key.ljust(64, b"\x00")  # keys here are at most 32 bytes, below the block size
    return hashlib.sha256(block.translate(_IPAD)), hashlib.sha256(block.translate(_OPAD))


def _hmac_once(key: bytes, msg: bytes) -> bytes:
    # A key used once: the pads are hashed together with the message, no state copies.
    # hmac.digest would look the digest up by name on every call, which costs more.
    block = key.ljust(64, b"\x00")
    inner = hashlib.sha256(block.translate(_IPAD) + msg).digest()
    return hashlib.sha256(block.translate(_OPAD) + inner).digest()


def _hmac(pads: tuple[hashlib._Hash, hashlib._Hash], msg: bytes) -> bytes:
    inner = pads[0].copy()
    inner.update(msg)
    outer = pads[1].copy()
    outer.update(inner.digest())
    return outer.digest()


def _expand_info(label: bytes, length: int) -> bytes:
    """HKDF-Expand-Label's info for an empty context, with RFC 5869's first counter byte."""
    full = b"tls13 " + label
    return struct.pack("!HB", length, len(full)) + full + b"\x00\x01"


_SALT_PADS: dict[int, tuple[hashlib._Hash, hashlib._Hash]] = {}
"""Keyed hash states per QUIC version we met (a handful: v1, v2, drafts)."""
_INFO_CLIENT_IN = _expand_info(b"client in", 32)
_INFO_V1 = (
    _expand_info(b"quic key", 16),
    _expand_info(b"quic iv", 12),
    _expand_info(b"quic hp", 16),
)
_INFO_V2 = (
    _expand_info(b"quicv2 key", 16),
    _expand_info(b"quicv2 iv", 12),
    _expand_info(b"quicv2 hp", 16),
)


def hkdf_expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    """TLS 1.3 HKDF-Expand-Label (RFC 8446 §7.1) with SHA-256 and an empty context."""
    # RFC 5869 HKDF-Expand needs only its first block T(1) = HMAC(PRK, info || 0x01) for
    # up to one hash length of output: one HMAC call instead of a KDF object per label.
    if not 0 < length <= 32:
        raise ValueError("HKDF-Expand-Label here yields 1 to 32 bytes")
    return hmac.digest(secret, _expand_info(label, length), "sha256")[:length]


def decode_packet_number(largest: int, truncated: int, bits: int) -> int:
    # RFC 9000 Appendix A.3
    expected = largest + 1
    win = 1 << bits
    hwin = win // 2
    candidate = (expected & ~(win - 1)) | truncated
    if candidate <= expected - hwin and candidate < (1 << 62) - win:
        return candidate + win
    if candidate > expected + hwin and candidate >= win:
        return candidate - win
    return candidate


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos >= end:
        raise MalformedError("QUIC varint truncated")
    first = data[pos]
    size = 1 << (first >> 6)
    if pos + size > end:
        raise MalformedError("QUIC varint truncated")
    value = first & 0x3F
    for i in range(1, size):
        value = (value << 8) | data[pos + i]
    return value, pos + size


class CryptoStream:
    """CRYPTO stream bytes by offset, in any order, capped at ``limit`` bytes."""

    __slots__ = ("buf", "limit", "ranges")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buf = bytearray()
        self.ranges: list[list[int]] = []
        """Sorted, merged [start, end) intervals received so far."""

    def add(self, offset: int, data: bytes) -> None:
        end = offset + len(data)
        if end > self.limit:
            raise MalformedError(f"QUIC CRYPTO data beyond {self.limit} bytes")
        if not data:
            return
        buf = self.buf
        if offset == len(buf):  # the usual in-order case: append, no zero fill first
            buf += data
        else:
            if end > len(buf):
                buf.extend(bytes(end - len(buf)))
            buf[offset:end] = data
        self._merge(offset, end)

    def _merge(self, start: int, end: int) -> None:
        kept: list[list[int]] = []
        placed = False
        for r in self.ranges:
            if r[1] < start:
                kept.append(r)
            elif r[0] > end:
                if not placed:
                    kept.append([start, end])
                    placed = True
                kept.append(r)
            else:
                start = min(start, r[0])
                end = max(end, r[1])
        if not placed:
            kept.append([start, end])
        if len(kept) > _MAX_RANGES:
            raise MalformedError("QUIC CRYPTO data in too many fragments")
        self.ranges = kept

    def contiguous(self) -> int:
        """Bytes available without a gap from offset 0."""
        if self.ranges and self.ranges[0][0] == 0:
            return self.ranges[0][1]
        return 0


_SPENT = CryptoStream(0)
"""The stream of every finished tracker: its limit of 0 refuses any data, so sharing is safe."""


class QuicInitialTracker:
    """Finds the ClientHello in the client half of one QUIC flow.

    ``feed`` each client-to-server UDP payload in capture order. It returns the
    ClientHello once, when complete; None while more is needed, for datagrams that
    are not client Initials (short headers, server packets, undecryptable packets),
    and forever after completion or after ``max_packets`` datagrams. It raises
    :class:`MalformedError` for a datagram whose packets or frames are broken;
    the tracker stays usable unless the CRYPTO stream itself is hopeless, in which
    case it is done. Unlike :func:`looks_like_quic_long_header`, ``feed`` does not
    insist on the fixed bit (RFC 9287 lets a client grease it); authentication decides.
    """

    __slots__ = ("_crypto", "_derivations", "_done", "_keys", "_max_crypto", "_seen", "max_packets")

    def __init__(self, *, max_crypto: int = 64 * 1024, max_packets: int = 32) -> None:
        self.max_packets = max_packets
        self._done = False
        self._max_crypto = max_crypto
        self._seen = 0
        self._keys: InitialKeys | None = None
        self._derivations = 0
        self._crypto = CryptoStream(max_crypto)

    @property
    def done(self) -> bool:
        """True once the ClientHello was returned or the tracker gave up."""
        return self._done

    @done.setter
    def done(self, value: bool) -> None:
        # A caller that abandons the flow releases the buffered CRYPTO bytes too.
        if value:
            self._finish()

    def feed(self, datagram: bytes) -> QuicClientHello | None:
        if self._done:
            return None
        self._seen += 1
        try:
            if datagram and datagram[0] & 0x80:
                hello = self._datagram(datagram)
                if hello is not None:
                    return hello
        except MalformedError:
            self._give_up_if_exhausted()
            raise
        self._give_up_if_exhausted()
        return None

    def opens(self, datagram: bytes) -> bool:
        """Does the first packet of ``datagram`` authenticate as a client Initial?"""
        hello = self._datagram(datagram, first_only=True)
        return hello is not None or self._keys is not None

    def _give_up_if_exhausted(self) -> None:
        if self._seen >= self.max_packets:
            self._finish()

    def _finish(self) -> None:
        self._done = True
        self._keys = None
        self._crypto = _SPENT  # drop the buffered bytes

    def _datagram(self, data: bytes, first_only: bool = False) -> QuicClientHello | None:
        if len(data) >= 5:
            (version,) = struct.unpack_from("!I", data, 1)
            if version not in _DECRYPTABLE and version != NEGOTIATION:
                # A version we do not know: read as v1 where it authenticates as such, but
                # its packets are not ours to call malformed.
                try:
                    return self._packets(data, first_only)
                except MalformedError:
                    return None
        return self._packets(data, first_only)

    def _packets(self, data: bytes, first_only: bool) -> QuicClientHello | None:
        pos = 0
        size = len(data)
        first_version = -1
        # Coalesced packets: each long header carries its own length; a short-header
        # packet or zero padding ends the datagram.
        while pos < size and data[pos] & 0x80:
            if size - pos < 7:
                raise MalformedError("QUIC long header truncated")
            first = data[pos]
            (version,) = struct.unpack_from("!I", data, pos + 1)
            if version == NEGOTIATION:
                return None  # a server's packet; nothing of the client's here
            if pos == 0:
                first_version = version
            elif version not in _DECRYPTABLE and version != first_version:
                raise MalformedError(f"coalesced QUIC packet of another version {version:#x}")
            ptype = (first & 0x30) >> 4
            if ptype == (_RETRY_V2 if version == V2 else _RETRY_V1):
                return None  # Retry runs to the datagram's end and is a server packet
            p = pos + 5
            dcid_len = data[p]
            if dcid_len > MAX_CID:
                raise MalformedError(f"QUIC DCID length {dcid_len} > {MAX_CID}")
            dcid = data[p + 1 : p + 1 + dcid_len]
            p += 1 + dcid_len
            if p >= size:
                raise MalformedError("QUIC long header truncated")
            scid_len = data[p]
            if scid_len > MAX_CID:
                raise MalformedError(f"QUIC SCID length {scid_len} > {MAX_CID}")
            p += 1 + scid_len
            is_initial = ptype == (_INITIAL_V2 if version == V2 else _INITIAL_V1)
            if is_initial:
                token_len, p = _varint(data, p, size)
                p += token_len
            length, p = _varint(data, p, size)
            end = p + length
            if end > size:
                raise MalformedError("QUIC packet length beyond the datagram")
            if is_initial:
                hello = self._initial(data[pos:end], p - pos, version, bytes(dcid))
                if hello is not None or first_only:
                    return hello
            pos = end
        return None

    def _initial(
        self, packet: bytes, pn_offset: int, version: int, dcid: bytes
    ) -> QuicClientHello | None:
        keys = self._keys
        opened = None
        if keys is not None and keys.version == version:
            opened = keys.unprotect(packet, pn_offset)
        if opened is None and (keys is None or keys.dcid != dcid or keys.version != version):
            # First Initial, or a new DCID after a Retry / version change.
            for keys_version in _key_versions(version):
                if self._derivations >= _MAX_DERIVATIONS:
                    return None
                self._derivations += 1
                fresh = InitialKeys(version, dcid, keys_version)
                opened = fresh.unprotect(packet, pn_offset)
                if opened is not None:
                    if keys is not None:
                        self._crypto = CryptoStream(self._max_crypto)  # the client restarted
                    self._keys = keys = fresh
                    break
        if opened is None or keys is None:
            return None
        self._frames(opened[1])
        return self._hello(keys)

    def _frames(self, payload: bytes) -> None:
        pos = 0
        end = len(payload)
        padded_from = -1  # where the trailing zeros start, found at the first PADDING
        crypto = self._crypto
        while pos < end:
            ftype, pos = _varint(payload, pos, end)
            if ftype == 0x00:  # PADDING: jump over the whole run
                if padded_from < 0:
                    padded_from = _trailing_zeros_start(payload, pos)
                if pos >= padded_from:
                    break
                m = _NOT_ZERO.search(payload, pos)
                pos = m.start() if m else end
            elif ftype == 0x06:  # CRYPTO
                offset, pos = _varint(payload, pos, end)
                length, pos = _varint(payload, pos, end)
                if pos + length > end:
                    raise MalformedError("QUIC CRYPTO frame beyond the packet")
                try:
                    crypto.add(offset, payload[pos : pos + length])
                except MalformedError:
                    self._finish()  # the stream is hopeless, not just this packet
                    raise
                pos += length
            elif ftype == 0x01:  # PING
                continue
            elif ftype in (0x02, 0x03):  # ACK, ACK with ECN counts
                pos = _skip_ack(payload, pos, end, ftype == 0x03)
            elif ftype in (0x1C, 0x1D):  # CONNECTION_CLOSE (transport, application)
                _, pos = _varint(payload, pos, end)
                if ftype == 0x1C:
                    _, pos = _varint(payload, pos, end)
                reason_len, pos = _varint(payload, pos, end)
                pos += reason_len
                if pos > end:
                    raise MalformedError("QUIC CONNECTION_CLOSE reason beyond the packet")
            else:
                raise MalformedError(f"QUIC frame type {ftype:#x} not allowed in Initial")

    def _hello(self, keys: InitialKeys) -> QuicClientHello | None:
        crypto = self._crypto
        have = crypto.contiguous()
        if have < 4:
            return None
        buf = crypto.buf
        if buf[0] != 1:
            self._finish()
            raise MalformedError(f"QUIC Initial CRYPTO starts with handshake type {buf[0]}")
        need = 4 + int.from_bytes(buf[1:4], "big")
        if need > self._max_crypto:
            self._finish()
            raise MalformedError(f"QUIC ClientHello of {need} bytes exceeds the cap")
        if have < need:
            return None
        hello = QuicClientHello(
            version=keys.version,
            version_name=quic_version_name(keys.version),
            dcid=keys.dcid,
            hello_body=bytes(buf[4:need]),
        )
        self._finish()
        return hello


def _trailing_zeros_start(payload: bytes, pos: int) -> int:
    """Index after the last non-zero byte of ``payload``; just ``pos`` when only zeros follow it."""
    # Clients pad Initials to 1200 bytes, mostly at the end: one memcmp against zeros
    # settles the usual case. Otherwise the highest set bit of the payload read as a
    # little-endian integer marks its last non-zero byte (a third of bytes.rstrip's cost).
    if payload.endswith(bytes(len(payload) - pos)):
        return pos
    return (int.from_bytes(payload, "little").bit_length() + 7) // 8


def _skip_ack(payload: bytes, pos: int, end: int, ecn: bool) -> int:
    _, pos = _varint(payload, pos, end)  # largest acknowledged
    _, pos = _varint(payload, pos, end)  # ACK delay
    ranges, pos = _varint(payload, pos, end)
    _, pos = _varint(payload, pos, end)  # first range
    if ranges > (end - pos) // 2:
        raise MalformedError("QUIC ACK range count beyond the packet")
    for _ in range(ranges):
        _, pos = _varint(payload, pos, end)  # gap
        _, pos = _varint(payload, pos, end)  # range length
    if ecn:
        for _ in range(3):
            _, pos = _varint(payload, pos, end)
    return pos
