"""DNS dissector: dnspython is the oracle for well-formed messages, RFC text for EDNS
options, and peer tools (Zeek, Suricata, nDPI, tshark transcripts) for the corpus."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dotaudit.dissect import dns as dns_module
from dotaudit.dissect.dns import DnsFacts, DnsTcpFramer, looks_like_dns, parse_dns
from dotaudit.errors import MalformedError
from tests.conftest import corpus_path
from tests.fuzzing import examples

HEADER = struct.Struct("!HHHHHH")


def header(qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0, word: int = 0x0100) -> bytes:
    return HEADER.pack(0x1234, word, qd, an, ns, ar)


def wire_name(*labels: bytes) -> bytes:
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


def oracle_text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True)


# -- header and question against dnspython -------------------------------------------


def test_query_header_and_question_match_dnspython() -> None:
    query = dns.message.make_query("www.Example.com", "AAAA")
    query.id = 0xBEEF
    facts = parse_dns(query.to_wire())
    assert facts.id == 0xBEEF
    assert facts.qr is False
    assert facts.opcode == dns.opcode.QUERY
    assert facts.rcode == 0
    assert facts.flags == ("rd",)
    assert (facts.qdcount, facts.ancount, facts.nscount, facts.arcount) == (1, 0, 0, 0)
    assert facts.qname == "www.Example.com"  # case kept as sent (0x20 randomisation)
    assert facts.qtype == dns.rdatatype.AAAA
    assert facts.qclass == 1
    assert facts.edns is None
    assert facts.malformed is None
    assert facts.size == len(query.to_wire())


@pytest.mark.parametrize(
    "flags",
    [
        dns.flags.QR | dns.flags.AA | dns.flags.TC | dns.flags.RD | dns.flags.RA,
        dns.flags.QR | dns.flags.AD | dns.flags.CD,
        dns.flags.QR,
        dns.flags.RD | dns.flags.CD,
    ],
)
def test_flags_follow_header_bits_in_fixed_order(flags: int) -> None:
    message = dns.message.make_query("example.org", "A")
    message.flags = flags
    facts = parse_dns(message.to_wire())
    expected = tuple(
        name
        for name, bit in (
            ("aa", dns.flags.AA),
            ("tc", dns.flags.TC),
            ("rd", dns.flags.RD),
            ("ra", dns.flags.RA),
            ("ad", dns.flags.AD),
            ("cd", dns.flags.CD),
        )
        if flags & bit
    )
    assert facts.flags == expected
    assert facts.qr == bool(flags & dns.flags.QR)


def test_response_counts_and_compressed_answers() -> None:
    query = dns.message.make_query("www.example.com", "A")
    response = dns.message.make_response(query)
    response.answer.append(
        dns.rrset.from_text("www.example.com.", 300, "IN", "CNAME", "edge.example.net.")
    )
    response.answer.append(
        dns.rrset.from_text("edge.example.net.", 300, "IN", "A", "192.0.2.1", "192.0.2.2")
    )
    response.authority.append(
        dns.rrset.from_text("example.net.", 300, "IN", "NS", "ns1.example.net.")
    )
    response.additional.append(
        dns.rrset.from_text("ns1.example.net.", 300, "IN", "A", "192.0.2.53")
    )
    wire = response.to_wire()
    facts = parse_dns(wire)
    oracle = dns.message.from_wire(wire)
    assert facts.qr is True
    assert facts.id == oracle.id
    assert facts.ancount == sum(len(rrset) for rrset in oracle.answer) == 3
    assert facts.nscount == 1
    assert facts.arcount == 1
    assert facts.qname == "www.example.com"
    assert facts.malformed is None


def test_opcode_notify_and_rcode_nxdomain() -> None:
    message = dns.message.make_query("example.com", "SOA")
    message.set_opcode(dns.opcode.NOTIFY)
    message.flags |= dns.flags.QR
    message.set_rcode(dns.rcode.NXDOMAIN)
    facts = parse_dns(message.to_wire())
    assert facts.opcode == dns.opcode.NOTIFY == 4
    assert facts.rcode == dns.rcode.NXDOMAIN
    assert facts.qtype == dns.rdatatype.SOA


def test_extended_rcode_is_folded_from_opt() -> None:
    query = dns.message.make_query("example.com", "A", use_edns=0)
    response = dns.message.make_response(query)
    response.set_rcode(dns.rcode.BADVERS)  # 16: high bits live in the OPT TTL
    wire = response.to_wire()
    assert wire[3] & 0x0F == 0  # the header alone says NOERROR
    facts = parse_dns(wire)
    assert facts.rcode == dns.rcode.BADVERS == 16
    assert facts.edns is not None


def test_no_question() -> None:
    facts = parse_dns(header(qd=0))
    assert (facts.qname, facts.qtype, facts.qclass) == (None, None, None)
    assert facts.malformed is None


def test_root_name_is_a_dot() -> None:
    facts = parse_dns(dns.message.make_query(".", "NS").to_wire())
    assert facts.qname == "." == oracle_text(dns.name.root)
    assert facts.qtype == dns.rdatatype.NS


@pytest.mark.parametrize("size", [0, 1, 11])
def test_shorter_than_header_raises(size: int) -> None:
    with pytest.raises(MalformedError):
        parse_dns(bytes(size))


def test_facts_are_frozen() -> None:
    facts = parse_dns(dns.message.make_query("example.com", "A").to_wire())
    assert type(facts) is DnsFacts
    with pytest.raises(AttributeError):
        facts.qname = "evil.example"  # type: ignore[misc]
    rebuilt = DnsFacts(*(getattr(facts, name) for name in DnsFacts.__slots__))
    assert rebuilt == facts and hash(rebuilt) == hash(facts)


# -- names --------------------------------------------------------------------------

LABEL = st.binary(min_size=1, max_size=63)


@st.composite
def dns_names(draw: st.DrawFn) -> dns.name.Name:
    labels = draw(st.lists(LABEL, min_size=0, max_size=8))
    while sum(len(label) + 1 for label in labels) + 1 > 255:
        labels.pop()
    return dns.name.Name([*labels, b""])


@settings(max_examples=examples(400), deadline=None)
@given(name=dns_names(), rdtype=st.sampled_from([1, 28, 16, 65, 64, 255, 33, 12]))
def test_round_trip_random_names_against_dnspython(name: dns.name.Name, rdtype: int) -> None:
    wire = dns.message.make_query(name, rdtype).to_wire()
    facts = parse_dns(wire)
    assert facts.qname == oracle_text(name)
    assert facts.qtype == rdtype
    assert facts.malformed is None
    # twice: the second parse is served by the name cache and must agree
    assert parse_dns(wire).qname == facts.qname


@pytest.mark.parametrize(
    "label",
    [b"a.b", b"back\\slash", b"\x1b[31mred", b"nul\x00byte", b"\xff\xfe", b'q"();@$', b"sp ace"],
)
def test_hostile_labels_are_escaped_like_dnspython(label: bytes) -> None:
    name = dns.name.Name([label, b"example", b""])
    facts = parse_dns(dns.message.make_query(name, "A").to_wire())
    assert facts.qname == oracle_text(name)
    assert facts.qname is not None
    assert facts.qname.isascii() and facts.qname.isprintable() and " " not in facts.qname


def test_name_longer_than_255_octets_is_cut_and_flagged() -> None:
    labels = [bytes([0x61 + i]) * 63 for i in range(5)]  # 321 octets on the wire
    wire = header() + wire_name(*labels) + struct.pack("!HH", 16, 1)
    facts = parse_dns(wire)
    assert facts.malformed == "name_too_long"
    # whole labels up to the 255-octet limit: 3 x 64 + 1 = 193, a 4th would make 257
    assert facts.qname == ".".join(label.decode() for label in labels[:3])
    assert (facts.qtype, facts.qclass) == (16, 1)  # the question's end was still found


def test_reserved_label_type_is_flagged() -> None:
    wire = header() + b"\x41abc\x00" + struct.pack("!HH", 1, 1)
    facts = parse_dns(wire)
    assert facts.malformed == "label_too_long"
    assert facts.qname is None


def pointer(offset: int) -> bytes:
    return struct.pack("!H", 0xC000 | offset)


def test_pointer_to_itself_is_a_loop() -> None:
    """Oracle: tshark shows `<Name contains a pointer that loops>` for this very message
    in zeek/dns-invalid-names (frame 2)."""
    facts = parse_dns(header() + pointer(12) + struct.pack("!HH", 1, 1))
    assert facts.malformed == "pointer_loop"
    assert facts.qname is None
    assert (facts.qtype, facts.qclass) == (1, 1)


def test_two_pointer_loop() -> None:
    # qname -> 18 -> "a" then pointer back to 18: a cycle through backward pointers
    body = pointer(18) + struct.pack("!HH", 1, 1) + b"\x01a" + pointer(18)
    facts = parse_dns(header() + body)
    assert facts.malformed == "pointer_loop"


def chain_message(jumps: int) -> bytes:
    """A question whose name reaches "a" only after ``jumps`` pointers."""
    base = 12 + 2 + 4
    tail = b"\x01a\x00"
    offsets = [base]
    for _ in range(jumps - 1):
        offsets.append(base + len(tail))
        tail += pointer(offsets[-2])
    return header() + pointer(offsets[-1]) + struct.pack("!HH", 1, 1) + tail


def test_pointer_chain_is_followed_up_to_the_bound() -> None:
    facts = parse_dns(chain_message(dns_module.MAX_POINTER_JUMPS))
    assert facts.qname == "a"
    # the first hop points forward, and the chain bytes are not a record
    assert facts.malformed == "label_forward_pointer"


def test_pointer_chain_beyond_the_bound_is_cut() -> None:
    facts = parse_dns(chain_message(dns_module.MAX_POINTER_JUMPS + 1))
    assert facts.malformed == "compression_depth"
    assert facts.qname is None
    assert facts.qtype == 1


def test_pointer_past_the_end() -> None:
    facts = parse_dns(header() + pointer(0x3FFF) + struct.pack("!HH", 1, 1))
    assert facts.malformed == "pointer_out_of_range"
    assert facts.qname is None


# -- EDNS(0) --------------------------------------------------------------------------


def edns_query(options: list[dns.edns.Option], **kwargs: object) -> bytes:
    query = dns.message.make_query("example.com", "A")
    query.use_edns(0, options=options, **kwargs)  # type: ignore[arg-type]
    return query.to_wire()


def test_edns_basic_fields_match_dnspython() -> None:
    query = dns.message.make_query("example.com", "A", use_edns=0, payload=1232)
    query.want_dnssec(True)
    wire = query.to_wire()
    oracle = dns.message.from_wire(wire)
    facts = parse_dns(wire)
    assert facts.edns is not None
    assert facts.edns.udp_size == oracle.payload == 1232
    assert facts.edns.do is bool(oracle.ednsflags & dns.flags.DO) is True
    assert facts.edns.version == oracle.edns == 0
    assert facts.edns.options == ()
    assert facts.malformed is None


def test_edns_version_and_options_in_order() -> None:
    options: list[dns.edns.Option] = [
        dns.edns.GenericOption(dns.edns.NSID, b""),
        dns.edns.ECSOption("198.51.100.0", 24),
        dns.edns.GenericOption(dns.edns.KEEPALIVE, b""),
        dns.edns.GenericOption(65001, b"\x01\x02"),
    ]
    query = dns.message.make_query("example.com", "A")
    query.use_edns(1, options=options)
    facts = parse_dns(query.to_wire())
    assert facts.edns is not None
    assert facts.edns.version == 1
    assert facts.edns.do is False
    assert facts.edns.options == (3, 8, 11, 65001)


@pytest.mark.parametrize("block", [128, 468])
def test_rfc7830_padding_length(block: int) -> None:
    wire = edns_query([], pad=block)
    oracle = dns.message.from_wire(wire)
    padding = [opt for opt in oracle.options if opt.otype == dns.edns.PADDING]
    assert len(padding) == 1
    facts = parse_dns(wire)
    assert facts.edns is not None
    assert len(wire) % block == 0
    assert facts.edns.padding == len(padding[0].to_wire())
    assert facts.edns.options == (12,)


def test_rfc7830_empty_padding() -> None:
    facts = parse_dns(edns_query([dns.edns.GenericOption(dns.edns.PADDING, b"")]))
    assert facts.edns is not None
    assert facts.edns.padding == 0


def test_no_padding_option_is_none() -> None:
    facts = parse_dns(edns_query([]))
    assert facts.edns is not None
    assert facts.edns.padding is None
    assert facts.edns.keepalive is None
    assert facts.edns.ecs is None
    assert facts.edns.nsid is None


def test_rfc7828_keepalive_without_value_in_a_query() -> None:
    facts = parse_dns(edns_query([dns.edns.GenericOption(dns.edns.KEEPALIVE, b"")]))
    assert facts.edns is not None
    assert facts.edns.keepalive == -1


def test_rfc7828_keepalive_with_timeout_in_100ms_units() -> None:
    value = struct.pack("!H", 1200)  # 120 seconds
    facts = parse_dns(edns_query([dns.edns.GenericOption(dns.edns.KEEPALIVE, value)]))
    assert facts.edns is not None
    assert facts.edns.keepalive == 1200


def test_rfc7828_keepalive_with_bad_length_is_flagged() -> None:
    facts = parse_dns(edns_query([dns.edns.GenericOption(dns.edns.KEEPALIVE, b"\x01")]))
    assert facts.malformed == "edns_bad_keepalive"
    assert facts.edns is not None and facts.edns.options == (11,)


@pytest.mark.parametrize(
    ("address", "prefix", "text"),
    [
        ("192.0.2.0", 24, "192.0.2.0/24"),
        ("198.51.100.128", 25, "198.51.100.128/25"),
        ("0.0.0.0", 0, "0.0.0.0/0"),
        ("2001:db8:1234::", 48, "2001:db8:1234::/48"),
        ("2001:db8::", 56, "2001:db8::/56"),
    ],
)
def test_rfc7871_client_subnet(address: str, prefix: int, text: str) -> None:
    option = dns.edns.ECSOption(address, prefix)
    facts = parse_dns(edns_query([option]))
    assert facts.edns is not None
    assert facts.edns.ecs == text
    assert facts.malformed is None


def test_rfc7871_client_subnet_with_wrong_address_length_is_flagged() -> None:
    # family 1, source /24 needs 3 address octets (RFC 7871 §6); 5 is impossible
    bad = dns.edns.GenericOption(dns.edns.ECS, struct.pack("!HBB", 1, 24, 0) + bytes(5))
    facts = parse_dns(edns_query([bad]))
    assert facts.malformed == "edns_bad_ecs"
    assert facts.edns is not None and facts.edns.ecs is None


@pytest.mark.parametrize(("data", "text"), [(b"", ""), (b"ns1.fra", "6e73312e667261")])
def test_rfc5001_nsid(data: bytes, text: str) -> None:
    facts = parse_dns(edns_query([dns.edns.NSIDOption(data)]))
    assert facts.edns is not None
    assert facts.edns.nsid == text == data.hex()


def opt_record(rdata: bytes, udp_size: int = 1232, ttl: int = 0) -> bytes:
    return b"\x00" + struct.pack("!HHIH", 41, udp_size, ttl, len(rdata)) + rdata


def test_broken_option_list_keeps_what_parsed() -> None:
    rdata = struct.pack("!HH", 12, 2) + b"\x00\x00" + struct.pack("!HH", 11, 9) + b"\x00"
    wire = header(ar=1) + wire_name(b"example", b"com") + b"\x00\x01\x00\x01" + opt_record(rdata)
    facts = parse_dns(wire)
    assert facts.malformed == "edns_bad_option"
    assert facts.edns is not None
    assert facts.edns.options == (12,)
    assert facts.edns.padding == 2


def test_second_opt_is_flagged_first_kept() -> None:
    question = wire_name(b"example", b"com") + b"\x00\x01\x00\x01"
    wire = header(ar=2) + question + opt_record(b"", 4096) + opt_record(b"", 512)
    facts = parse_dns(wire)
    assert facts.malformed == "multiple_opt"
    assert facts.edns is not None and facts.edns.udp_size == 4096


def test_opt_outside_additional_is_not_edns() -> None:
    question = wire_name(b"example", b"com") + b"\x00\x01\x00\x01"
    facts = parse_dns(header(an=1) + question + opt_record(b""))
    assert facts.edns is None
    assert facts.malformed is None


def test_truncated_opt_still_gives_its_fixed_part() -> None:
    wire = edns_query([dns.edns.GenericOption(dns.edns.PADDING, bytes(40))])
    facts = parse_dns(wire[:-20])
    assert facts.malformed == "truncated_additional"
    assert facts.edns is not None and facts.edns.udp_size == 1232


# -- truncation and trailing bytes -----------------------------------------------------


def test_every_truncation_of_a_response_keeps_header_and_question() -> None:
    query = dns.message.make_query("www.example.com", "A", use_edns=0, pad=64)
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text("www.example.com.", 60, "IN", "A", "192.0.2.1"))
    wire = response.to_wire()
    question_end = 12 + len(wire_name(b"www", b"example", b"com")) + 4
    seen = set()
    for cut in range(12, len(wire)):
        facts = parse_dns(wire[:cut])
        assert facts.id == response.id
        assert facts.malformed is not None
        seen.add(facts.malformed)
        if cut >= question_end:
            assert facts.qname == "www.example.com"
            assert facts.qtype == 1
    assert seen == {"truncated_question", "truncated_answer", "truncated_additional"}


def test_trailing_garbage() -> None:
    wire = dns.message.make_query("example.com", "A").to_wire() + b"\x00junk"
    facts = parse_dns(wire)
    assert facts.malformed == "trailing_garbage"
    assert facts.qname == "example.com"


def test_counts_larger_than_the_message_are_cheap() -> None:
    wire = header(qd=0xFFFF, an=0xFFFF, ns=0xFFFF, ar=0xFFFF) + wire_name(b"a") + b"\x00\x01"
    facts = parse_dns(wire)
    assert facts.malformed == "truncated_question"
    assert facts.qname == "a"


def test_name_cache_is_bounded() -> None:
    for i in range(dns_module.NAME_CACHE_SIZE + 10):
        parse_dns(dns.message.make_query(f"h{i}.example", "A").to_wire())
    assert len(dns_module._NAME_CACHE) <= dns_module.NAME_CACHE_SIZE


# -- looks_like_dns ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "wire",
    [
        dns.message.make_query("example.com", "A").to_wire(),
        dns.message.make_query("example.com", "HTTPS", use_edns=0, pad=128).to_wire(),
        dns.message.make_response(dns.message.make_query("_dns.resolver.arpa", "SVCB")).to_wire(),
        dns.message.make_query(".", "DNSKEY").to_wire(),
    ],
)
def test_looks_like_dns_accepts_dns(wire: bytes) -> None:
    assert looks_like_dns(wire)


def tls_client_hello() -> bytes:
    from scapy.layers.tls.extensions import ServerName, TLS_Ext_ServerName
    from scapy.layers.tls.handshake import TLSClientHello
    from scapy.layers.tls.record import TLS

    hello = TLSClientHello(ext=[TLS_Ext_ServerName(servernames=[ServerName(servername=b"a.b")])])
    return bytes(TLS(msg=[hello]))


@pytest.mark.parametrize(
    "payload",
    [
        b"GET /dns-query?dns=AAABAAABAAAAAAAAB2V4YW1wbGUDY29tAAABAAE HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /dns-query HTTP/1.1\r\nContent-Type: application/dns-message\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
        bytes(64),
    ],
)
def test_looks_like_dns_rejects_other_protocols(payload: bytes) -> None:
    assert not looks_like_dns(payload)


def test_looks_like_dns_rejects_a_tls_client_hello() -> None:
    hello = tls_client_hello()
    assert hello[0] == 0x16
    assert not looks_like_dns(hello)
    assert not looks_like_dns(hello[2:])  # as if it were a length-prefixed TCP message


def test_looks_like_dns_rejects_random_bytes() -> None:
    rng = random.Random(1035)
    accepted = sum(looks_like_dns(rng.randbytes(rng.randrange(17, 1500))) for _ in range(20000))
    assert accepted <= 2


def test_looks_like_dns_rejects_bad_header_fields() -> None:
    good = dns.message.make_query("example.com", "A").to_wire()
    assert looks_like_dns(good)
    z_bit = good[:3] + bytes([good[3] | 0x40]) + good[4:]
    opcode_3 = good[:2] + bytes([good[2] | 0x18]) + good[3:]
    query_rcode = good[:3] + bytes([good[3] | 0x02]) + good[4:]
    no_question = good[:4] + b"\x00\x00" + good[6:]
    bad_qtype = good[:-4] + b"\xf0\x00\x00\x01"
    bad_qclass = good[:-2] + b"\x00\x09"
    compressed = header() + pointer(12) + b"\x00\x01\x00\x01" + bytes(4)
    for wire in (z_bit, opcode_3, query_rcode, no_question, bad_qtype, bad_qclass, compressed):
        assert not looks_like_dns(wire)


# -- TCP framing -------------------------------------------------------------------------


def framed(message: bytes) -> bytes:
    return struct.pack("!H", len(message)) + message


def test_framer_several_messages_in_one_segment() -> None:
    messages = [dns.message.make_query(f"{i}.example", "A").to_wire() for i in range(5)]
    framer = DnsTcpFramer()
    assert framer.feed(b"".join(framed(m) for m in messages)) == messages
    assert framer.buffered == 0


def test_framer_message_split_byte_by_byte() -> None:
    message = dns.message.make_query("split.example", "A").to_wire()
    framer = DnsTcpFramer()
    out: list[bytes] = []
    for byte in framed(message) + framed(message)[:1]:
        out += framer.feed(bytes([byte]))
    assert out == [message]
    assert framer.buffered == 1


def test_framer_segment_ending_and_starting_mid_message() -> None:
    one, two, three = (framed(bytes([i]) * 20) for i in range(3))
    stream = one + two + three
    framer = DnsTcpFramer()
    assert framer.feed(stream[:30]) == [bytes(20)]
    assert framer.feed(stream[30:50]) == [b"\x01" * 20]
    assert framer.feed(stream[50:]) == [b"\x02" * 20]


def test_framer_reset_drops_the_partial_message() -> None:
    framer = DnsTcpFramer()
    assert framer.feed(framed(b"x" * 100)[:50]) == []
    assert framer.buffered == 50
    framer.reset()
    assert framer.buffered == 0
    assert framer.feed(framed(b"y" * 12)) == [b"y" * 12]


def test_framer_empty_message_is_passed_on() -> None:
    assert DnsTcpFramer().feed(b"\x00\x00" + framed(b"z" * 12)) == [b"", b"z" * 12]


def test_framer_buffer_is_bounded_by_the_largest_message() -> None:
    framer = DnsTcpFramer()
    big = framed(b"\x01" * 65535)
    assert framer.feed(big[:-1]) == []
    assert framer.buffered == 65536
    assert framer.feed(big[-1:] + big[:-1]) == [b"\x01" * 65535]
    assert framer.buffered <= 65537


# -- corpus conformance ------------------------------------------------------------------


def udp_payloads(path: Path) -> Iterator[tuple[int, int, int, bytes]]:
    from scapy.layers.inet import UDP
    from scapy.utils import PcapReader

    with PcapReader(str(path)) as reader:
        for frame, packet in enumerate(reader, 1):
            if UDP in packet and type(packet[UDP]) is UDP:  # not an ICMP-quoted UDPerror
                udp = packet[UDP]
                yield frame, udp.sport, udp.dport, bytes(udp.payload)


def tcp_streams(path: Path) -> dict[tuple[int, int], list[bytes]]:
    """Segment payloads per direction in capture order, retransmissions dropped."""
    from scapy.layers.inet import TCP
    from scapy.utils import PcapReader

    streams: dict[tuple[int, int], list[bytes]] = {}
    seen: set[tuple[int, int, int]] = set()
    with PcapReader(str(path)) as reader:
        for packet in reader:
            if TCP not in packet:
                continue
            tcp = packet[TCP]
            payload = bytes(tcp.payload)
            if not payload or (tcp.sport, tcp.dport, tcp.seq) in seen:
                continue
            seen.add((tcp.sport, tcp.dport, tcp.seq))
            streams.setdefault((tcp.sport, tcp.dport), []).append(payload)
    return streams


def frame_messages(segments: list[bytes]) -> list[bytes]:
    framer = DnsTcpFramer()
    messages: list[bytes] = []
    for segment in segments:
        messages += framer.feed(segment)
    assert framer.buffered == 0
    return messages


@pytest.mark.corpus
def test_zeek_invalid_names_each_give_a_reason() -> None:
    """Oracle: Zeek's invalid-names test expects one weird per query
    (DNS_label_len_gt_pkt, DNS_label_forward_compress_offset, dns_invalid_name);
    tshark shows the second as `<Name contains a pointer that loops>`."""
    path = corpus_path("zeek/dns-invalid-names/dns-invalid-names.pcap")
    results = [parse_dns(payload) for _, _, _, payload in udp_payloads(path)]
    assert len(results) == 3
    assert all(facts.malformed for facts in results)
    assert all(facts.qname is None for facts in results)
    assert results[1].malformed == "pointer_loop"
    assert all(not looks_like_dns(payload) for _, _, _, payload in udp_payloads(path))


@pytest.mark.corpus
def test_zeek_max_compression_depth_answer_chain_is_skipped() -> None:
    """Oracle: tshark reads the question name `a`. Zeek's weird
    DNS_max_compression_chain_depth_exceeded concerns an answer owner name (a chain of
    6 pointers); answer names are only skipped here, never followed, so the depth of
    their chains costs nothing and is not reported."""
    path = corpus_path("zeek/dns-max-compression-depth/max-compression-depth.pcap")
    ((_, _, _, payload),) = list(udp_payloads(path))
    facts = parse_dns(payload)
    assert facts.qr
    assert facts.qname == "a"
    assert facts.ancount == 7
    assert facts.malformed is None


@pytest.mark.corpus
def test_suricata_forward_pointer_is_resolved_and_flagged() -> None:
    """Oracle: Suricata logs queries[0].rrname `codemonkey.net` (expected/test.yaml),
    tshark shows `codemonkey.net` twice in frame 1.

    Decision: RFC 1035 §4.1.4 defines a pointer as pointing to a *prior* occurrence of
    the name, so this query is not conformant, and Zeek flags the same construct
    (DNS_label_forward_compress_offset). Suricata accepts it without a parser error.
    We do both: the name is resolved (within the jump bound and loop check, so it is
    safe) because the name is what the privacy audit needs, and the message is
    flagged "label_forward_pointer" because a real stub resolver never sends this."""
    path = corpus_path("suricata-verify/dns-forward-pointer/input.pcap")
    query, response = (parse_dns(payload) for _, _, _, payload in udp_payloads(path))
    assert query.id == response.id == 36356
    assert query.qdcount == 2
    assert query.qname == "codemonkey.net"
    assert (query.qtype, query.qclass) == (1, 1)
    assert query.malformed == "label_forward_pointer"
    assert response.qname == "codemonkey.net"
    assert response.ancount == 1
    assert response.malformed is None


@pytest.mark.corpus
def test_ndpi_malformed_responses_still_give_the_question() -> None:
    """Oracle: tshark names `www.xt.com` in all 6 frames and `<Name too long>` for the
    second question of the 4 responses; nDPI flags the flow Malformed Packet."""
    path = corpus_path("ndpi/dns-malformed/malformed_dns.pcap")
    results = [(sport, parse_dns(payload)) for _, sport, _, payload in udp_payloads(path)]
    assert len(results) == 6
    assert all(facts.qname == "www.xt.com" for _, facts in results)
    queries = [facts for sport, facts in results if sport != 53]
    responses = [facts for sport, facts in results if sport == 53]
    assert len(queries) == 2 and all(facts.malformed is None for facts in queries)
    assert len(responses) == 4
    assert all(facts.size == 1388 and facts.malformed == "name_too_long" for facts in responses)


@pytest.mark.corpus
def test_dpkt_snaplen_truncated_response() -> None:
    """Oracle: tshark reads the question `api.spd.samsungdm.com` in the one response;
    the frame was cut by the snaplen inside the 9 claimed answers (MANIFEST)."""
    path = corpus_path("dpkt/dns-truncated/truncated_dns.pcap")
    ((_, _, _, payload),) = list(udp_payloads(path))
    facts = parse_dns(payload)
    assert facts.qname == "api.spd.samsungdm.com"
    assert facts.qr and facts.ancount == 9
    assert facts.malformed == "truncated_answer"


@pytest.mark.corpus
def test_suricata_tcp_multirequest_buffer() -> None:
    """Oracle: tshark decodes 20 queries and 20 responses, names 0..19.google.com;
    Suricata logs 20 request and 20 response events."""
    path = corpus_path(
        "suricata-verify/dns-tcp-multirequest-buffer/dns-tcp-multirequest-buffer.pcap"
    )
    streams = tcp_streams(path)
    expected = [f"{i}.google.com" for i in range(20)]
    queries = [
        parse_dns(m) for key, segs in streams.items() if key[1] == 53 for m in frame_messages(segs)
    ]
    responses = [
        parse_dns(m) for key, segs in streams.items() if key[0] == 53 for m in frame_messages(segs)
    ]
    assert [facts.qname for facts in queries] == expected
    assert [facts.qname for facts in responses] == expected
    assert not any(facts.qr for facts in queries)
    assert all(facts.qr for facts in responses)
    assert all(facts.malformed is None for facts in queries + responses)
    # fewer segments than messages: several messages shared a segment
    assert len(streams[next(key for key in streams if key[1] == 53)]) < 20


@pytest.mark.corpus
def test_zeek_tcp_tkey_query_spans_three_segments() -> None:
    """Oracle: Zeek dns.log trans_id 52640, qtype 249 (TKEY), and tshark's name."""
    path = corpus_path("zeek/dns-tcp-tkey/tkey.pcap")
    streams = tcp_streams(path)
    client = next(key for key in streams if key[1] == 53)
    assert len(streams[client]) == 3
    (message,) = frame_messages(streams[client])
    # MANIFEST: 3247 bytes on the wire, i.e. the 2-byte length prefix + the message
    assert sum(map(len, streams[client])) == 3247 == len(message) + 2
    facts = parse_dns(message)
    assert facts.id == 52640
    assert facts.qtype == 249
    assert facts.qname == "1068-ms-7.309-2c6e448.7a9463b8-b109-11ed-26a3-080027f220e5"
    assert facts.malformed is None
    (answer,) = frame_messages(streams[(53, client[0])])
    assert parse_dns(answer).qtype == 249 and parse_dns(answer).qr


@pytest.mark.corpus
def test_suricata_1500_overlong_questions_are_bounded() -> None:
    """Oracle: Suricata reports queries[0].rrname truncated (1025 chars, rrname_truncated);
    tshark with decode-as shows every question as `<Name too long>`."""
    path = corpus_path("suricata-verify/dns-tcp-truncated-rname-port1053/poc2.pcap")
    streams = tcp_streams(path)
    (message,) = frame_messages(streams[next(key for key in streams if key[1] == 1053)])
    assert looks_like_dns(message)
    facts = parse_dns(message)
    assert facts.qdcount == 1500
    assert facts.malformed == "name_too_long"
    assert facts.qname is not None
    assert len(facts.qname) <= 255 and facts.qname.startswith("123456789abcdef")


def http2_data_by_stream(segments: list[bytes]) -> dict[int, bytes]:
    """DATA frame payloads per HTTP/2 stream (RFC 9113 §4.1, §6.1), padding removed."""
    stream = b"".join(segments)
    if stream.startswith(b"PRI * HTTP/2.0"):
        stream = stream[24:]
    out: dict[int, bytes] = {}
    pos = 0
    while pos + 9 <= len(stream):
        length = int.from_bytes(stream[pos : pos + 3], "big")
        kind, flags = stream[pos + 3], stream[pos + 4]
        stream_id = int.from_bytes(stream[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
        body = stream[pos + 9 : pos + 9 + length]
        if kind == 0:
            if flags & 0x08:
                body = body[1 : len(body) - body[0]]
            out[stream_id] = out.get(stream_id, b"") + body
        pos += 9 + length
    return out


@pytest.mark.corpus
def test_suricata_doh_h2c_responses_carry_padding() -> None:
    """Oracle: tshark (e) counts 4 frames with EDNS(0) Padding (option 12) and (a2) names
    `www.gstatic.com`x2, `nav-edge.smartscreen.microsoft.com`x2 for the 4 responses."""
    path = corpus_path("suricata-verify/doh-h2c-port80/dns_over_https.pcap")
    streams = tcp_streams(path)
    bodies = http2_data_by_stream(streams[next(key for key in streams if key[0] == 80)])
    assert all(looks_like_dns(body) for body in bodies.values())
    results = [parse_dns(body) for body in bodies.values()]
    assert sorted(facts.qname or "" for facts in results) == [
        "nav-edge.smartscreen.microsoft.com",
        "nav-edge.smartscreen.microsoft.com",
        "www.gstatic.com",
        "www.gstatic.com",
    ]
    for facts in results:
        assert facts.qr and facts.id == 0  # RFC 8484 §4.1: DoH uses id 0
        assert facts.edns is not None
        assert facts.edns.padding is not None and 12 in facts.edns.options


@pytest.mark.corpus
@pytest.mark.parametrize(
    "relative", ["ndpi/doq-localhost-784/doq.pcapng", "zeek/quic-doq-853/quicdoq.pcap"]
)
def test_quic_payloads_are_not_dns(relative: str) -> None:
    """Oracle: MANIFEST note: tshark misreads the QUIC short headers of doq.pcapng as
    14 malformed DNS queries; nDPI and Zeek see QUIC (DoQ) only."""
    payloads = [payload for _, _, _, payload in udp_payloads(corpus_path(relative))]
    assert len(payloads) >= 9
    assert not any(looks_like_dns(payload) for payload in payloads)


@pytest.mark.corpus
def test_tls_client_hellos_from_the_corpus_are_not_dns() -> None:
    """Oracle: tshark (b) finds a ClientHello in each of these captures."""
    hellos = []
    for relative in (
        "ndpi/dot-google-no-sni/dns_dot.pcap",
        "suricata-verify/tls-client-hello-frag-mtu300/dump_mtu300.pcap",
    ):
        for segments in tcp_streams(corpus_path(relative)).values():
            if segments[0][:1] == b"\x16":
                hellos.append(segments[0])
    assert hellos
    assert not any(looks_like_dns(hello) or looks_like_dns(hello[2:]) for hello in hellos)


def test_bytearray_and_memoryview_input() -> None:
    wire = dns.message.make_query("example.com", "A", use_edns=0).to_wire()
    expected = parse_dns(wire)
    assert parse_dns(bytearray(wire)) == expected
    assert parse_dns(memoryview(wire)) == expected  # type: ignore[arg-type]
