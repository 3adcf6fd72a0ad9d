"""What every transport call shares: the deadline arithmetic and how a socket error is
classified. Oracle: the errno meanings of Linux's socket API (connect(2), ip(7))."""

from __future__ import annotations

import errno
import time

import pytest

from dotaudit.probe.transport.base import Deadline, classify_oserror


def test_deadline_clips_and_nests() -> None:
    outer = Deadline(10.0)
    assert 9.0 < outer.remaining() <= 10.0
    assert outer.clip(0.5) == 0.5
    inner = outer.sub(0.2)
    assert inner.seconds <= 0.2 and not inner.expired()
    time.sleep(0.25)
    assert inner.expired() and inner.remaining() == 0.0
    assert not outer.expired()
    assert Deadline(-1.0).seconds == 0.0  # a spent budget, never a negative wait


def test_nested_deadline_never_outlives_its_parent() -> None:
    outer = Deadline(0.1)
    assert outer.sub(5.0).seconds <= 0.1


@pytest.mark.parametrize(
    ("exc", "kind", "name"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "refused", "ECONNREFUSED"),
        (OSError(errno.EHOSTUNREACH, "no route"), "icmp", "EHOSTUNREACH"),
        (OSError(errno.EACCES, "denied"), "icmp", "EACCES"),
        (ConnectionResetError(errno.ECONNRESET, "reset"), "reset", "ECONNRESET"),
        (BrokenPipeError(errno.EPIPE, "pipe"), "reset", "EPIPE"),
        (TimeoutError(errno.ETIMEDOUT, "timed out"), "timeout", "ETIMEDOUT"),
        (OSError(errno.EADDRNOTAVAIL, "no such address"), "oserror", "EADDRNOTAVAIL"),
    ],
)
def test_socket_errors_are_classified(exc: OSError, kind: str, name: str) -> None:
    found = classify_oserror(exc, "TCP connect to 192.0.2.1:853")
    assert (found.kind, found.errno_name) == (kind, name)
    assert str(found).startswith("TCP connect to 192.0.2.1:853: ")


def test_a_refused_datagram_is_not_called_a_tcp_reset() -> None:
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "refused")
    assert "(TCP RST)" in str(classify_oserror(refused, "TCP connect to 192.0.2.1:853"))
    found = classify_oserror(refused, "UDP DNS to [2001:db8::1]:53", udp=True)
    assert found.kind == "refused"
    assert str(found) == (
        "UDP DNS to [2001:db8::1]:53: connection refused (ICMP port unreachable: nothing "
        "listens on that UDP port)"
    )
