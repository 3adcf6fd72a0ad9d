"""hijack.53: is port 53 the same resolver as DoT? Oracles: the lab (Unbound answers on
both with one id.server) and an in-test UDP responder on the same address that claims
another identity and another A record (a hijacking box no real resolver imitates)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import dns.message
import dns.rdataclass
import dns.rrset
import pytest

from dotaudit.probe.runner import TargetResult
from tests.lab.lab import Lab
from tests.test_probe.lab_probe import evidence, probe, status

pytestmark = pytest.mark.lab


def test_port_53_same_resolver(padded_audit: TargetResult) -> None:
    assert status(padded_audit, "hijack.53") == "pass"
    found = evidence(padded_audit, "hijack.53")
    assert found["tls"]["id.server"] == found["plain"]["id.server"]  # type: ignore[index]


@pytest.fixture
def impostor(lab: Lab) -> Iterator[int]:
    """A plain DNS responder on the padded resolver's address, another port, answering
    with its own id.server and a different A record: a hijacking box on port 53."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((lab["padded"].address, 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            question = query.question[0]
            if question.rdclass == dns.rdataclass.CH:
                reply.answer.append(dns.rrset.from_text(question.name, 0, "CH", "TXT", '"box"'))
            else:
                reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", "10.9.9.9"))
            sock.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join(2)
    sock.close()


def test_hijacked_port_53_detected(lab: Lab, impostor: int) -> None:
    result = probe(lab, "padded", {"hijack.53"}, plain_port=impostor)
    assert status(result, "hijack.53") == "fail"
    reason = result.attempt("hijack.53").error_reason or ""  # type: ignore[union-attr]
    assert "id.server" in reason and "box" in reason
