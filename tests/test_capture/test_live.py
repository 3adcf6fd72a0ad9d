"""Live capture on the loopback interface with the prefilter in the kernel: a DNS
datagram is captured, a datagram to another port is not (oracle: what was sent)."""

from __future__ import annotations

import socket
import time

from dotaudit.capture.live import LiveCapture


def test_loopback_capture_keeps_only_what_the_prefilter_admits() -> None:
    target = socket.inet_aton("127.0.0.99")
    with LiveCapture("lo", timeout_ms=50) as capture:
        senders = []
        # The port the prefilter refuses goes first: loopback keeps the order, so if it
        # were admitted it would be seen before the one that ends the wait.
        for port in (40404, 53):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.sendto(
                b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + bytes(17),
                ("127.0.0.99", port),
            )
            senders.append(sock)
        ports: list[int] = []
        deadline = time.monotonic() + 5
        for batch in capture.batches():
            # Only this test's frames: other tests may be talking on loopback meanwhile.
            ports += [
                int.from_bytes(frame[36:38], "big")  # Ethernet + IPv4: dport
                for _, _, frame, _ in batch
                if frame[30:34] == target
            ]
            if 53 in ports or time.monotonic() > deadline:
                break
        for sock in senders:
            sock.close()
    assert 53 in ports
    assert 40404 not in ports
    assert capture.linktype == 1
