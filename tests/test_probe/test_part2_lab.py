"""Part-2 checks against the real lab (issue 7).

Oracles: the lab's construction (tests/lab/unbound.py: pad-responses and the 468 block,
edns-tcp-keepalive and its timeout, tcp-idle-timeout; tests/lab/doq_server.py pads to
468), RFC 8467 §4.1 arithmetic on the measured lengths, and for hijack.53 an in-test
UDP responder that claims another identity.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import dns.message
import dns.rdataclass
import dns.rrset
import pytest

from dotaudit.probe.base import CheckStatus
from dotaudit.probe.runner import TargetResult
from tests.lab.lab import Lab
from tests.test_probe.part2_lab import probe

pytestmark = pytest.mark.lab

MAX_TLS_CONNECTIONS = 6
PADDING_ONLY = {"padding.response", "padding.unsolicited"}


def status(result: TargetResult, check_id: str) -> str:
    attempt = result.attempt(check_id)
    assert attempt is not None, f"{check_id} did not run"
    return attempt.status.value


def evidence(result: TargetResult, check_id: str) -> dict[str, object]:
    attempt = result.attempt(check_id)
    assert attempt is not None
    return attempt.evidence


@pytest.fixture(scope="module")
def full_padded(lab: Lab) -> TargetResult:
    return probe(lab, "padded")


def test_full_audit_uses_at_most_six_tls_connections(full_padded: TargetResult) -> None:
    stats = full_padded.stats
    assert stats["tls_handshakes"] + stats["quic_handshakes"] <= MAX_TLS_CONNECTIONS, stats
    ran = {a.id for a in full_padded.attempts}
    assert {"dns.answer", "keepalive", "pipelining", "latency", "hijack.53"} <= ran
    assert status(full_padded, "dns.answer") == "pass"
    assert evidence(full_padded, "dns.answer")["answer"] == ["A 198.51.100.80"]


def test_padded_unbound_pads_to_468(full_padded: TargetResult) -> None:
    assert status(full_padded, "padding.response") == "pass"
    found = evidence(full_padded, "padding.response")
    assert found["query_len"] % 128 == 0
    assert found["response_len"] % 468 == 0 and found["padded"] is True
    assert found["nonzero_padding"]["accepted"] is True  # type: ignore[index]
    assert status(full_padded, "padding.unsolicited") == "pass"


@pytest.mark.parametrize("variant", ["unpadded", "intercept"])
def test_unpadded_servers_fail_padding(lab: Lab, variant: str) -> None:
    result = probe(lab, variant, PADDING_ONLY)
    assert status(result, "padding.response") == "fail"
    found = evidence(result, "padding.response")
    assert found["padded"] is False and found["response_len"] % 468 != 0


def test_doq_server_passes_padding_and_alpn(lab: Lab) -> None:
    result = probe(lab, "doq", {"doq", "reach.53"})
    assert status(result, "doq") == "pass", result.attempt("doq")
    found = evidence(result, "doq")
    assert found["alpn"] == "doq" and found["message_id"] == 0
    assert found["padded"] is True and found["response_len"] % 468 == 0  # type: ignore[operator]
    assert found["certificate"]["chain_verified"] is True  # type: ignore[index]
    assert result.stats["quic_handshakes"] == 1


def test_no_keepalive_unbound_warns(lab: Lab) -> None:
    result = probe(lab, "no_keepalive", {"keepalive"})
    assert status(result, "keepalive") == "warn"
    assert evidence(result, "keepalive")["advertised"] is False


def test_short_timeout_advertised_matches_measured_idle_close(lab: Lab) -> None:
    resolver = lab["short_timeout"]
    result = probe(lab, "short_timeout", {"keepalive"})
    found = evidence(result, "keepalive")
    assert found["advertised_units"] == resolver.keepalive_ms // 100  # 20 x 100 ms
    measured = found["measured_idle_close_ms"]
    assert isinstance(measured, int)
    assert abs(measured - resolver.keepalive_ms) <= 600, found
    assert status(result, "keepalive") == "pass" and found["mismatch"] is False


def test_dnsdist_keepalive_is_relayed_but_not_honoured(lab: Lab) -> None:
    # dnsdist relays the backend Unbound's keepalive option (120 s) yet closes idle
    # client connections after its own 2 s tcpRecvTimeout: the mismatch is the finding.
    result = probe(lab, "intercept", {"keepalive"})
    found = evidence(result, "keepalive")
    assert status(result, "keepalive") == "warn" and found["mismatch"] is True, found
    assert found["idle_end"] != "open"
    assert found["measured_idle_close_ms"] < found["advertised_ms"]  # type: ignore[operator]


def test_ten_pipelined_queries_all_answered(full_padded: TargetResult) -> None:
    found = evidence(full_padded, "pipelining")
    assert status(full_padded, "pipelining") == "pass"
    assert found["answered"] == found["sent"] == 10
    assert sorted(found["response_order"]) == list(range(10))  # type: ignore[arg-type]
    assert "no slow name given" in str(found["order_note"])


def test_reuse_and_latency(full_padded: TargetResult) -> None:
    assert status(full_padded, "reuse") == "pass"
    latency = evidence(full_padded, "latency")
    assert latency["round_trips"]["dot_first_answer"] == 3  # type: ignore[index]
    assert latency["reused_query_ms"]["n"] >= 5  # type: ignore[index]
    assert latency["udp53"]["reachable"] is True  # type: ignore[index]


def test_online_checks_skip_without_online(full_padded: TargetResult) -> None:
    for check_id in ("dnssec", "qname-min"):
        attempt = full_padded.attempt(check_id)
        assert attempt is not None and attempt.status is CheckStatus.SKIP
        assert "needs internet" in (attempt.error_reason or "")


def test_port_53_same_resolver(full_padded: TargetResult) -> None:
    assert status(full_padded, "hijack.53") == "pass"
    found = evidence(full_padded, "hijack.53")
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
