"""TLS handshake messages for the benchmark capture: browser-like ClientHellos with SNI,
TLS 1.3 / 1.2 server flights, and a small deterministic certificate chain."""

from __future__ import annotations

import datetime
import random
import struct

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

GREASE = tuple(0x0A0A + 0x1010 * i for i in range(16))
KYBER = 0x6399  # X25519Kyber768Draft00, what Chrome 124+ offers; makes hellos span segments


def u8(b: bytes) -> bytes:
    return struct.pack("!B", len(b)) + b


def u16(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


def u24(b: bytes) -> bytes:
    return struct.pack("!I", len(b))[1:] + b


def ext(kind: int, body: bytes) -> bytes:
    return struct.pack("!H", kind) + u16(body)


def handshake(msg_type: int, body: bytes) -> bytes:
    return struct.pack("!B", msg_type) + u24(body)


def record(content_type: int, body: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", content_type, version, len(body)) + body


def records(content_type: int, body: bytes, version: int = 0x0303) -> bytes:
    """``body`` split into records of at most 2^14 bytes."""
    return b"".join(
        record(content_type, body[i : i + 16384], version) for i in range(0, len(body), 16384)
    )


def app_data(rng: random.Random, length: int) -> bytes:
    """An application_data record whose fragment is ``length`` opaque bytes."""
    return record(23, rng.randbytes(length))


def _u16s(values: list[int]) -> bytes:
    return struct.pack(f"!{len(values)}H", *values)


def _sni(name: str) -> bytes:
    host = name.encode("ascii")
    return ext(0, u16(b"\x00" + u16(host)))


def _alpn(protos: tuple[str, ...]) -> bytes:
    if not protos:
        return b""
    return ext(16, u16(b"".join(u8(p.encode()) for p in protos)))


SIGALGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]
CHROME_CIPHERS = [
    0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8,
    0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035,
]  # fmt: skip
FIREFOX_CIPHERS = [
    0x1301, 0x1303, 0x1302, 0xC02B, 0xC02F, 0xCCA9, 0xCCA8, 0xC02C, 0xC030,
    0xC00A, 0xC009, 0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035,
]  # fmt: skip
OPENSSL_CIPHERS = [
    0x1302, 0x1303, 0x1301, 0xC02C, 0xC030, 0x009F, 0xCCA9, 0xCCA8, 0xCCAA, 0xC02B,
    0xC02F, 0x009E, 0xC024, 0xC028, 0x006B, 0xC023, 0xC027, 0x0067, 0xC00A, 0xC014,
    0x0039, 0xC009, 0xC013, 0x0033, 0x009D, 0x009C, 0x003D, 0x003C, 0x0035, 0x002F, 0x00FF,
]  # fmt: skip
LEGACY_CIPHERS = [0xC02F, 0xC030, 0xC013, 0xC014, 0x009C, 0x002F, 0x0035, 0x000A]

PROFILES = ("chrome", "firefox", "openssl", "legacy")


def client_hello(
    rng: random.Random,
    sni: str | None,
    profile: str = "chrome",
    alpn: tuple[str, ...] = ("h2", "http/1.1"),
    quic_params: bytes | None = None,
    kyber: bool = False,
) -> bytes:
    """A ClientHello handshake message (with its 4-byte header).

    ``quic_params`` makes a QUIC hello: TLS 1.3 only, empty session id, transport
    parameters extension.
    """
    grease = rng.choice(GREASE)
    g2 = rng.choice(GREASE)
    x25519 = ext_key = rng.randbytes(32)
    session_id = b"" if quic_params is not None else rng.randbytes(32)
    exts: list[bytes] = []
    if profile == "chrome":
        ciphers = [grease, *CHROME_CIPHERS]
        if quic_params is not None:
            ciphers = [0x1301, 0x1302, 0x1303]
        shares = struct.pack("!HH", grease, 1) + b"\x00"
        groups = [grease, 0x001D, 0x0017, 0x0018]
        if kyber:
            shares += struct.pack("!HH", KYBER, 1216) + rng.randbytes(1216)
            groups.insert(1, KYBER)
        shares += struct.pack("!HH", 0x001D, 32) + x25519
        body = [
            _sni(sni) if sni else b"",
            ext(23, b""),
            ext(0xFF01, b"\x00"),
            ext(10, u16(_u16s(groups))),
            ext(11, b"\x01\x00"),
            ext(35, b""),
            _alpn(alpn),
            ext(5, b"\x01\x00\x00\x00\x00"),
            ext(13, u16(_u16s(SIGALGS))),
            ext(18, b""),
            ext(51, u16(shares)),
            ext(45, b"\x01\x01"),
            ext(43, u8(_u16s([g2, 0x0304, 0x0303]))),
            ext(27, b"\x02\x00\x02"),
            ext(17513, u16(u8(alpn[0].encode()))) if alpn else b"",
        ]
        if quic_params is not None:
            body = [b for b in body if b[:2] not in (b"\x00\x17", b"\xff\x01", b"\x00\x0b")]
            body.append(ext(0x39, quic_params))
        rng.shuffle(body)  # Chrome permutes its extensions since version 110
        exts = [ext(grease, b""), *[b for b in body if b], ext(g2, b"\x00")]
    elif profile == "firefox":
        ciphers = FIREFOX_CIPHERS if quic_params is None else [0x1301, 0x1303, 0x1302]
        p256 = b"\x04" + rng.randbytes(64)
        shares = struct.pack("!HH", 0x001D, 32) + x25519 + struct.pack("!HH", 0x0017, 65) + p256
        ech_payload = rng.randbytes(rng.choice((144, 176, 208, 240)))
        ech = b"\x00" + _u16s([0x0001, 0x0001]) + bytes([rng.randrange(256)])
        ech += u16(rng.randbytes(32)) + u16(ech_payload)
        exts = [
            _sni(sni) if sni else b"",
            ext(23, b""),
            ext(0xFF01, b"\x00"),
            ext(10, u16(_u16s([0x001D, 0x0017, 0x0018, 0x0019, 0x0100, 0x0101]))),
            ext(11, b"\x01\x00"),
            ext(35, b""),
            _alpn(alpn),
            ext(5, b"\x01\x00\x00\x00\x00"),
            ext(34, u16(_u16s([0x0403, 0x0503, 0x0603, 0x0203]))),
            ext(51, u16(shares)),
            ext(43, u8(_u16s([0x0304, 0x0303]))),
            ext(13, u16(_u16s(SIGALGS))),
            ext(45, b"\x01\x01"),
            ext(28, b"\x40\x01"),
            ext(0xFE0D, ech),  # GREASE ECH, as Firefox sends it
        ]
        if quic_params is not None:
            exts.append(ext(0x39, quic_params))
        exts = [e for e in exts if e]
    elif profile == "openssl":
        ciphers = OPENSSL_CIPHERS
        exts = [
            _sni(sni) if sni else b"",
            ext(11, b"\x03\x00\x01\x02"),
            ext(10, u16(_u16s([0x001D, 0x0017, 0x001E, 0x0019, 0x0018]))),
            ext(35, b""),
            _alpn(alpn),
            ext(22, b""),
            ext(23, b""),
            ext(13, u16(_u16s([*SIGALGS, 0x0807, 0x0808]))),
            ext(43, u8(_u16s([0x0304, 0x0303]))),
            ext(45, b"\x01\x01"),
            ext(51, u16(struct.pack("!HH", 0x001D, 32) + ext_key)),
        ]
        exts = [e for e in exts if e]
    else:  # an old TLS 1.2-only client (embedded devices, old Android)
        ciphers = LEGACY_CIPHERS
        exts = [
            _sni(sni) if sni else b"",
            ext(10, u16(_u16s([0x0017, 0x0018]))),
            ext(11, b"\x01\x00"),
            ext(13, u16(_u16s([0x0401, 0x0403, 0x0501, 0x0201]))),
        ]
        exts = [e for e in exts if e]
    ext_block = b"".join(exts)
    if profile == "chrome" and quic_params is None:
        # Chrome pads hellos between 256 and 511 bytes up to 512 (RFC 7685 padding).
        size = 4 + 2 + 32 + 1 + len(session_id) + 2 + 2 * len(ciphers) + 2 + 2 + len(ext_block)
        if 256 <= size < 512:
            ext_block = ext_block[:-5] + ext(21, bytes(max(512 - size - 4, 0))) + ext_block[-5:]
    body_bytes = (
        b"\x03\x03"
        + rng.randbytes(32)
        + u8(session_id)
        + u16(_u16s(ciphers))
        + b"\x01\x00"
        + u16(ext_block)
    )
    return handshake(1, body_bytes)


def server_hello_13(rng: random.Random, session_id: bytes, cipher: int = 0x1301) -> bytes:
    exts = ext(43, b"\x03\x04") + ext(51, struct.pack("!HH", 0x001D, 32) + rng.randbytes(32))
    body = b"\x03\x03" + rng.randbytes(32) + u8(session_id) + struct.pack("!HB", cipher, 0)
    return handshake(2, body + u16(exts))


def server_flight_13(rng: random.Random, quic: bool = False) -> bytes:
    """ServerHello, ChangeCipherSpec, then the encrypted rest of the handshake."""
    hello = record(22, server_hello_13(rng, rng.randbytes(32)))
    encrypted = rng.randrange(2400, 5200)
    return hello + record(20, b"\x01") + app_data(rng, encrypted)


def server_flight_12(rng: random.Random, chain: list[bytes], alpn: str | None) -> bytes:
    """TLS 1.2 ServerHello, Certificate (in clear), ServerKeyExchange, ServerHelloDone."""
    exts = ext(0xFF01, b"\x00") + ext(23, b"") + ext(11, b"\x01\x00")
    if alpn:
        exts += _alpn((alpn,))
    hello = handshake(
        2,
        b"\x03\x03" + rng.randbytes(32) + u8(rng.randbytes(32)) + b"\xc0\x2b\x00" + u16(exts),
    )
    cert = handshake(11, u24(b"".join(u24(c) for c in chain)))
    signature = b"\x30\x45\x02\x20" + rng.randbytes(32) + b"\x02\x21\x00" + rng.randbytes(32)
    kex = handshake(12, b"\x03\x00\x1d" + u8(rng.randbytes(32)) + b"\x04\x03" + u16(signature))
    done = handshake(14, b"")
    return records(22, hello + cert + kex + done)


def client_finish_12(rng: random.Random) -> bytes:
    return (
        record(22, handshake(16, u8(rng.randbytes(32))))
        + record(20, b"\x01")
        + record(22, rng.randbytes(40))
    )


def server_finish_12(rng: random.Random) -> bytes:
    return record(20, b"\x01") + record(22, rng.randbytes(40))


def encrypted_alert(rng: random.Random) -> bytes:
    return record(21, rng.randbytes(26))


def make_chains(hosts: list[str]) -> dict[str, list[bytes]]:
    """DER chains (leaf, intermediate) for ``hosts``: deterministic keys and signatures."""
    curve = ec.SECP256R1()
    ca_key = ec.derive_private_key(0x5EED_CA_0001, curve)
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bench Trust Services"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Bench Issuing CA 1"),
        ]
    )
    start = datetime.datetime(2024, 3, 1, tzinfo=datetime.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(0x1001)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    ca_der = ca.public_bytes(serialization.Encoding.DER)
    chains = {}
    for i, host in enumerate(hosts):
        key = ec.derive_private_key(0x5EED_0000 + i + 1, curve)
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(0x2000 + i)
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=90))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(host), x509.DNSName("*." + host)]),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256(), ecdsa_deterministic=True)
        )
        chains[host] = [leaf.public_bytes(serialization.Encoding.DER), ca_der]
    return chains
