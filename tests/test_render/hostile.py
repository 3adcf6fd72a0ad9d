"""A capture full of attacker-controlled text, for the HTML report's safety tests.

Query names, SNI values and certificate subjects carry markup, ``javascript:`` URLs, a
right-to-left override, control characters and NULs, maximum-length labels and a
1,000-character name. Everything is built byte by byte (scapy only frames it) so the
values reach the dissectors exactly as an attacker would send them.
"""

from __future__ import annotations

import datetime
import os
import struct
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from scapy.all import IP, TCP, UDP, Ether, Raw, wrpcap

MAC_C = "02:00:00:00:00:01"
MAC_S = "02:00:00:00:00:02"
CLIENT = "192.0.2.66"
RESOLVER = "198.51.100.53"
DOT_SERVER = "203.0.113.85"

SCRIPT = "<script>document.title='pwned'</script>"
IMG = "\"><img src=x onerror=document.body.setAttribute('data-pwned',1)>"
JS_URL = "javascript:alert(document.domain)"
RLO = "\u202e"
LONG_NAME = ("x" * 63 + ".") * 15 + "x" * 40
"""1,000 characters: far over DNS's 253 (fine in an SNI, which allows 65,535 bytes)."""
MAX_LABELS = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
"""253 characters: the longest name DNS allows, in 63-octet labels."""

HOSTILE_QNAMES: tuple[bytes, ...] = (
    SCRIPT.encode(),
    IMG.encode(),
    JS_URL.encode(),
    ("evil" + RLO + "gpj.exe.example").encode(),
    b"ctl\x00nul\x07bel\x1b[31mred\x0d\x0a.example",
    MAX_LABELS.encode(),
)
HOSTILE_SNIS: tuple[str, ...] = (
    SCRIPT,
    IMG,
    JS_URL,
    "moc.elgoog" + RLO + ".example",
    "nul\x00ctl\x01\x1b.example",
    LONG_NAME,
)
HOSTILE_SUBJECT_CN = "<script>alert(1)</script>" + RLO + "moc.\x00"
HOSTILE_ORG = IMG + " " + "O" * 1000


def _encode_qname(name: bytes | str) -> bytes:
    raw = name.encode("utf-8") if isinstance(name, str) else name
    out = b""
    for label in raw.split(b"."):
        out += bytes([min(len(label), 63)]) + label[:63]
    return out + b"\x00"


def dns_query(qid: int, name: bytes | str) -> bytes:
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    return header + _encode_qname(name) + struct.pack("!HH", 1, 1)


def _vec16(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def _u24(n: int) -> bytes:
    return n.to_bytes(3, "big")


def record(content_type: int, payload: bytes) -> bytes:
    return struct.pack("!BHH", content_type, 0x0303, len(payload)) + payload


def handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + _u24(len(body)) + body


def client_hello(sni: str) -> bytes:
    name = sni.encode("utf-8")
    sni_ext = struct.pack("!H", 0) + _vec16(_vec16(b"\x00" + _vec16(name)))
    alpn_ext = struct.pack("!H", 16) + _vec16(_vec16(b"\x03dot"))
    body = (
        b"\x03\x03"
        + os.urandom(32)
        + b"\x00"
        + _vec16(struct.pack("!HH", 0xC02F, 0xC030))
        + b"\x01\x00"
        + _vec16(sni_ext + alpn_ext)
    )
    return record(22, handshake(1, body))


def hostile_certificate() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    # RFC 4514 text lists the last attribute first: the CN leads the subject string.
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, HOSTILE_ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, HOSTILE_SUBJECT_CN),
        ]
    )
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(0x1234)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.DER)


def server_flight(cert_der: bytes) -> bytes:
    hello = b"\x03\x03" + os.urandom(32) + b"\x00" + struct.pack("!H", 0xC02F) + b"\x00"
    certificates = _u24(len(cert_der)) + cert_der
    return record(
        22,
        handshake(2, hello)
        + handshake(11, _u24(len(certificates)) + certificates)
        + handshake(14, b""),
    )


def _stamp(packet: Any, ts: float) -> Any:
    packet.time = ts
    return packet


def tcp_session(
    ts: float, cport: int, server: str, c_data: list[bytes], s_data: list[bytes]
) -> list[Any]:
    """A whole TCP connection: handshake, alternating data, FIN both ways."""
    c_seq, s_seq = 1000, 50000
    out: list[Any] = []

    def seg(from_client: bool, flags: str, payload: bytes = b"") -> None:
        nonlocal c_seq, s_seq, ts
        ts += 0.002
        if from_client:
            ip = IP(src=CLIENT, dst=server) / TCP(
                sport=cport, dport=853, flags=flags, seq=c_seq, ack=s_seq
            )
        else:
            ip = IP(src=server, dst=CLIENT) / TCP(
                sport=853, dport=cport, flags=flags, seq=s_seq, ack=c_seq
            )
        ether = Ether(src=MAC_C, dst=MAC_S) if from_client else Ether(src=MAC_S, dst=MAC_C)
        frame = ether / ip / Raw(payload) if payload else ether / ip
        out.append(_stamp(frame, ts))
        step = len(payload) + (1 if "S" in flags or "F" in flags else 0)
        if from_client:
            c_seq += step
        else:
            s_seq += step

    seg(True, "S")
    seg(False, "SA")
    seg(True, "A")
    for i in range(max(len(c_data), len(s_data))):
        for from_client, chunks in ((True, c_data), (False, s_data)):
            if i < len(chunks):
                data = chunks[i]
                for start in range(0, len(data), 1400):
                    seg(from_client, "PA", data[start : start + 1400])
    seg(True, "FA")
    seg(False, "FA")
    seg(True, "A")
    return out


def write_hostile_capture(path: Path) -> Path:
    """Plaintext DNS with hostile names and DoT sessions with hostile SNI and certificate."""
    packets: list[Any] = []
    ts = 1_700_000_000.0
    for qid, name in enumerate(HOSTILE_QNAMES, 1):
        query = (
            Ether(src=MAC_C, dst=MAC_S)
            / IP(src=CLIENT, dst=RESOLVER)
            / UDP(sport=41000 + qid, dport=53)
        )
        packets.append(_stamp(query / Raw(dns_query(qid, name)), ts + qid * 0.1))
    cert = hostile_certificate()
    app = [record(23, os.urandom(n)) for n in (63, 71, 58)]
    for i, sni in enumerate(HOSTILE_SNIS):
        start = ts + 2.0 + i
        client = [client_hello(sni), record(20, b"\x01") + record(22, os.urandom(40)), *app]
        server = [server_flight(cert), record(20, b"\x01") + record(22, os.urandom(40)), *app]
        packets += tcp_session(start, 51000 + i, DOT_SERVER, client, server)
    packets.sort(key=lambda p: float(p.time))
    wrpcap(str(path), packets)
    return path


if __name__ == "__main__":
    import sys

    print(write_hostile_capture(Path(sys.argv[1] if len(sys.argv) > 1 else "hostile.pcap")))
