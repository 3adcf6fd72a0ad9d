"""cleartext-on-853: what counts as a cleartext answer (RFC 7858 §3.1: a server MUST
NOT answer cleartext DNS on its DoT port). The lab side is in test_lab_variants.py."""

from __future__ import annotations

import dns.message

from dotaudit.probe.checks.cleartext_on_853 import BAD_CLIENT_HELLO, answered


def test_cleartext_answer_detection() -> None:
    query = dns.message.make_query("example.com", "A")
    reply = dns.message.make_response(query).to_wire()
    framed = len(reply).to_bytes(2, "big") + reply
    alert = bytes.fromhex("15030300020232")
    assert answered(framed, query)
    assert answered(alert + framed, query)  # an alert, then an answer anyway: still a fail
    assert not answered(alert, query)
    assert not answered(BAD_CLIENT_HELLO, query)
    other = dns.message.make_query("example.com", "A")
    other.id = (query.id + 1) % 65536
    wrong = dns.message.make_response(other).to_wire()
    assert not answered(len(wrong).to_bytes(2, "big") + wrong, query)
