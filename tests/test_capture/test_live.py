"""Live capture on the loopback interface with the prefilter in the kernel: a DNS
datagram is captured, a datagram to another port is not (oracle: what was sent)."""

from __future__ import annotations

import socket
import time

from dotaudit.capture.live import LiveCapture


def test_loopback_capture_keeps_only_what_the_prefilter_admits() -> None:
    with LiveCapture("lo", timeout_ms=50) as capture:
        senders = []
        for port in (53, 40404):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.sendto(
                b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + bytes(17),
                ("127.0.0.99", port),
            )
            senders.append(sock)
        seen: list[bytes] = []
        deadline = time.monotonic() + 5
        for batch in capture.batches():
            seen += [data for _, _, data, _ in batch]
            if seen or time.monotonic() > deadline:
                break
        for sock in senders:
            sock.close()
    ports = {int.from_bytes(frame[36:38], "big") for frame in seen}  # Ethernet + IPv4: dport
    assert 53 in ports
    assert 40404 not in ports
    assert capture.linktype == 1
