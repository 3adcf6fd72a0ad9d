"""Resolver identities: NSID (RFC 5001 §2.3: the option in the response carries the
server's identifier) and the CHAOS TXT names id.server and hostname.bind (RFC 4892 §2.1,
§2.2). Only what both paths tell is compared."""

from __future__ import annotations

import dns.edns
import dns.message
import dns.rrset

from dotaudit.probe.discovery.identity import (
    Identity,
    ask_identity,
    differences,
    nsid_of,
    nsid_query,
    same_identity,
)
from dotaudit.probe.transport import ProbeError


def test_the_nsid_query_asks_for_nsid() -> None:
    query = nsid_query("www.lab.test")
    assert [o.otype for o in query.options] == [dns.edns.OptionType.NSID]
    assert query.options[0].to_wire() == b""


def test_nsid_is_shown_as_text_or_hex() -> None:
    reply = dns.message.make_response(nsid_query("x.test"))
    reply.use_edns(0, options=[dns.edns.GenericOption(dns.edns.OptionType.NSID, b"ns1")])
    assert nsid_of(reply) == "ns1"
    reply.use_edns(0, options=[dns.edns.GenericOption(dns.edns.OptionType.NSID, b"\x01\xff")])
    assert nsid_of(reply) == "01ff"


def test_ask_identity_keeps_going_when_chaos_goes_unanswered() -> None:
    def ask(query: dns.message.Message) -> dns.message.Message:
        reply = dns.message.make_response(query)
        if query.question[0].name.to_text() == "hostname.bind.":
            raise ProbeError("timeout", "no answer")
        if query.question[0].name.to_text() == "id.server.":
            reply.answer.append(dns.rrset.from_text("id.server.", 0, "CH", "TXT", '"r1"'))
        return reply

    found = ask_identity(ask, "www.lab.test")
    assert found.chaos == {"id.server": ['"r1"'], "hostname.bind": None}
    assert found.told() == {"id.server": ['"r1"']}


def test_differences_compare_only_what_both_told() -> None:
    tls = Identity("ns-a", {"id.server": ['"a"'], "hostname.bind": None})
    plain = Identity("ns-b", {"id.server": ['"b"'], "hostname.bind": ['"h"']})
    assert differences(tls, plain, "DoT") == [
        "NSID 'ns-b' over port 53, 'ns-a' over DoT",
        'id.server "b" over port 53, "a" over DoT',
    ]
    assert differences(tls, Identity("ns-a", {"id.server": ['"a"']}), "DoT") == []
    # Nothing told on 53 while the encrypted path has an NSID: a stand-in answering.
    assert differences(Identity("ns-a"), Identity(None), "DoT") == [
        "NSID 'ns-a' over DoT, none over port 53"
    ]


def test_same_identity_needs_something_shared_and_equal() -> None:
    a = Identity("x", {"id.server": ['"1"']})
    assert same_identity(a, Identity("x"))
    assert not same_identity(a, Identity("y"))
    assert not same_identity(Identity(None), Identity(None))
    assert not same_identity(Identity("x"), Identity(None, {"id.server": ['"1"']}))
