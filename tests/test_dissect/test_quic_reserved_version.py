"""QUIC Initials of a reserved (``0x?a?a?a?a``) or unknown version still carry a
ClientHello: its SNI is read with the v1 keys, or draft-29's (what tshark assumes for the
reserved versions), and the event keeps the version as seen.

Oracles: aioquic (an independent QUIC implementation) protects the packets; tshark reads
the draft-29 variant, and in the real capture (an aioquic client offering 0x1a2a3a4a first
against the lab's DoQ server, tests/data/quic) the server's Version Negotiation and the
client's v1 ClientHello that follows it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import aioquic.quic.crypto
import pytest

from dotaudit.dissect.quic import (
    QuicInitialTracker,
    opens_as_unknown_version_initial,
    quic_version_name,
)
from dotaudit.model.events import ConnectionSeen, QuicInitialSeen
from dotaudit.pipeline import CaptureRun
from tests.lab import encap
from tests.test_capture.capwrite import pcap
from tests.test_dissect.test_quic import DCID, RFC_HANDSHAKE, crypto_frame, initial

DATA = Path(__file__).resolve().parents[1] / "data" / "quic"
REAL = DATA / "reserved-version-aioquic.pcap"
RESERVED = 0x1A2A3A4A
SALT_DRAFT_29 = bytes.fromhex("afbfec289993d24c9e9786f19c6111e04390a899")  # draft-29 §5.2


def hello(version: int) -> bytes:
    return initial(DCID, crypto_frame(0, RFC_HANDSHAKE) + bytes(1100), version=version)


def as_pcap(tmp_path: Path, *datagrams: bytes, dport: int = 443) -> Path:
    frames = [
        (1.0 + i, encap.ethernet(encap.ipv4(encap.udp(d, "192.0.2.1", "192.0.2.2", 50000, dport),
                                            "192.0.2.1", "192.0.2.2", 17), 0x0800))
        for i, d in enumerate(datagrams)
    ]  # fmt: skip
    path = tmp_path / "quic.pcap"
    path.write_bytes(pcap(frames))
    return path


def test_version_names() -> None:
    assert quic_version_name(1) == "v1"
    assert quic_version_name(RESERVED) == "0x1a2a3a4a"
    assert quic_version_name(0x12345678) == "0x12345678"


@pytest.mark.parametrize("version", [RESERVED, 0xFAFAFAFA, 0x12345678])
def test_unknown_version_initial_read_with_v1_keys(version: int) -> None:
    packet = hello(version)  # aioquic protects any version but v2 with the v1 keys
    assert opens_as_unknown_version_initial(packet)
    got = QuicInitialTracker().feed(packet)
    assert got is not None
    assert (got.version, got.version_name) == (version, f"0x{version:08x}")
    assert b"example.com" in got.hello_body


def test_reserved_version_with_draft29_keys_as_tshark_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aioquic.quic.crypto, "INITIAL_SALT_VERSION_1", SALT_DRAFT_29)
    packet = hello(RESERVED)
    monkeypatch.undo()
    path = as_pcap(tmp_path, packet)
    events = list(CaptureRun(path, hash_input=False).events())
    [seen] = [e for e in events if isinstance(e, QuicInitialSeen)]
    assert (seen.version, seen.sni, seen.frame) == ("0x1a2a3a4a", "example.com", 1)
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed (make debs)")
    out = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "quic.version",
         "-e", "tls.handshake.extensions_server_name"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert out == ["0x1a2a3a4a", seen.sni]


def test_unknown_version_that_does_not_authenticate_is_not_quic(tmp_path: Path) -> None:
    packet = bytearray(hello(RESERVED))
    packet[-30] ^= 1  # the AEAD tag no longer matches
    assert not opens_as_unknown_version_initial(bytes(packet))
    assert QuicInitialTracker().feed(bytes(packet)) is None
    # Not malformed either: a version we do not know is not ours to judge.
    assert QuicInitialTracker().feed(bytes(packet[:40])) is None
    assert QuicInitialTracker().feed(bytes(packet[:6]) + b"\x30" + bytes(60)) is None
    events = list(CaptureRun(as_pcap(tmp_path, bytes(packet), dport=4433)).events())
    # host_identity: which Ethernet address sent the flow, not a reading of its payload
    assert [e.type for e in events if e.type != "host_identity"] == ["connection"]
    connection = events[-1]
    assert isinstance(connection, ConnectionSeen) and connection.app is None


def test_known_version_flows_unchanged() -> None:
    packet = hello(1)
    assert not opens_as_unknown_version_initial(packet)  # the classifier's known path
    got = QuicInitialTracker().feed(packet)
    assert got is not None and got.version_name == "v1"


def check_reserved_version_capture(path: Path, tmp_path: Path, port: int) -> None:
    """The SNI leaked by the reserved-version Initial is the SNI tshark reads in the v1
    Initial the same client sends after the server's Version Negotiation."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed (make debs)")
    decode = ["-d", f"udp.port=={port},quic"]
    fields = ["-T", "fields", "-e", "frame.number", "-e", "quic.version", "-e",
              "quic.long.packet_type", "-e", "tls.handshake.extensions_server_name",
              "-e", "tls.handshake.extensions_alpn_str"]  # fmt: skip
    rows = [
        line.split("\t")
        for line in subprocess.run(
            ["tshark", "-n", "-r", str(path), *decode, "-Y", "quic.long.packet_type == 0 || "
             "quic.version == 0", *fields], capture_output=True, text=True, check=True,
        ).stdout.splitlines()
    ]  # fmt: skip
    first, negotiation = rows[0], rows[1]
    assert first[1] == "0x1a2a3a4a" and first[2] == "0"  # a client Initial, reserved version
    assert negotiation[1] == "0x00000000"  # the server's Version Negotiation
    retry_frame = int(rows[2][0])
    assert rows[2][1] == "0x00000001"
    # tshark reads the client's v1 Initial once the reserved-version one is out of the way.
    after = tmp_path / "after-negotiation.pcap"
    subprocess.run(["editcap", str(path), str(after), f"1-{retry_frame - 1}"], check=True)
    v1 = subprocess.run(
        ["tshark", "-n", "-r", str(after), *decode, "-Y", "tls.handshake.type == 1", *fields],
        capture_output=True, text=True, check=True,
    ).stdout.split("\t")  # fmt: skip
    sni, alpn = v1[3], v1[4].strip()
    assert sni

    events = list(CaptureRun(path, hash_input=False).events())
    [seen] = [e for e in events if isinstance(e, QuicInitialSeen)]
    assert (seen.frame, seen.version) == (int(first[0]), "0x1a2a3a4a")
    assert (seen.sni, ",".join(seen.alpn)) == (sni, alpn)
    assert [e for e in events if e.type == "anomaly"] == []


def test_real_client_reserved_version_capture(tmp_path: Path) -> None:
    check_reserved_version_capture(REAL, tmp_path, 18853)
