"""Which addresses stay, and the free-text pass over every spelling of an address."""

from __future__ import annotations

import ipaddress

import pytest

from dotaudit.redact.key import RedactionKey
from dotaudit.redact.names import NameLevel
from dotaudit.redact.redactor import RedactionConfig, Redactor, parse_address

KEY = RedactionKey(bytes(range(32)))
CLIENT = ipaddress.ip_address("198.51.100.23")
CLIENT6 = ipaddress.ip_address("2001:db8:1::22")
RESOLVER = ipaddress.ip_address("203.0.113.53")
RESOLVER6 = ipaddress.ip_address("2001:db8:53::53")


def make(resolvers: bool = False, level: NameLevel = NameLevel.REGISTRABLE) -> Redactor:
    config = RedactionConfig(key=KEY, names=level, resolvers=resolvers)
    return Redactor(config, clients=[CLIENT, CLIENT6], resolvers=[RESOLVER, RESOLVER6])


def test_clients_pseudonymised_resolvers_kept_unless_asked() -> None:
    r = make()
    assert r.address(CLIENT) != CLIENT
    assert r.address(RESOLVER) == RESOLVER
    hidden = make(resolvers=True)
    assert hidden.address(RESOLVER) != RESOLVER
    assert hidden.address(CLIENT) == r.address(CLIENT)  # one key, one pseudonym


def test_an_address_that_is_client_and_resolver_counts_as_client() -> None:
    forwarder = ipaddress.ip_address("10.0.0.53")
    config = RedactionConfig(key=KEY)
    r = Redactor(config, clients=[forwarder], resolvers=[forwarder, RESOLVER])
    assert r.address(forwarder) != forwarder
    assert r.address(RESOLVER) == RESOLVER


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "::1", "0.0.0.0", "::", "224.0.0.251", "ff02::fb", "255.255.255.255"]
)
def test_addresses_that_identify_nobody_stay(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert make(resolvers=True).address(ip) == ip


def test_unknown_addresses_are_pseudonymised_too() -> None:
    other = ipaddress.ip_address("192.0.2.80")  # a web server, an ICMP sender ...
    assert make().address(other) != other


def test_ipv4_mapped_address_gets_the_ipv4_pseudonym() -> None:
    r = make()
    mapped = r.address(ipaddress.ip_address("::ffff:198.51.100.23"))
    assert isinstance(mapped, ipaddress.IPv6Address)
    assert mapped.ipv4_mapped == r.address(CLIENT)
    kept = r.address(ipaddress.ip_address("::ffff:203.0.113.53"))
    assert kept.ipv4_mapped == RESOLVER


def test_text_pass_rewrites_every_spelling() -> None:
    r = make()
    p4 = str(r.address(CLIENT))
    p6 = r.address(CLIENT6)
    text = (
        "client 198.51.100.23 then 198.51.100.23:5353, |198.51.100.23|; "
        "v6 2001:db8:1::22 and 2001:0db8:0001:0000:0000:0000:0000:0022 and "
        "[2001:db8:1::22]:853 and ::ffff:198.51.100.23, "
        "ptr 23.100.51.198.in-addr.arpa; ecs 198.51.100.0/24; host 198.51.100.23/24; "
        "resolver 203.0.113.53 and 2001:db8:53::53:853"
    )
    out = r.text(text)
    for original in (
        "198.51.100.23",
        "2001:db8:1::22",
        "0db8:0001",
        "198.51.100.0",
        "23.100.51.198",
    ):
        assert original not in out, (original, out)
    assert out.count(p4) >= 4
    assert str(p6) in out
    assert f"[{p6}]:853" in out
    assert "203.0.113.53" in out and "2001:db8:53::53:853" in out
    network = ipaddress.ip_network(f"{p4}/24", strict=False)
    assert f"ecs {network}" in out
    assert f"host {p4}/24" in out
    assert "*.in-addr.arpa" in out


@pytest.mark.parametrize(
    "text",
    [
        "version 1.2.3.4.5",
        "time 12:30:45",
        "std::string",
        "ja4 t13d101000_61a7ad8aa9b6_1f22a2ca17c4",
        "RFC 8310 §5",
        "sha256 3c7156950ac1a63f8c9d2db2d0979ee8ab6b948bf6bcd4adf61ff0ac414cef5a",
        "fingerprint AB:CD:EF:01:23:45:67:89:AB:CD",
    ],
)
def test_text_pass_leaves_what_is_not_an_address(text: str) -> None:
    assert make().text(text) == text


def test_mac_addresses_in_text_and_bytes() -> None:
    r = make()
    out = r.text("from 00:11:22:33:44:55 and 00-11-22-33-44-55 to ff:ff:ff:ff:ff:ff")
    assert "00:11:22:33:44:55" not in out and "00-11-22-33-44-55" not in out
    assert "ff:ff:ff:ff:ff:ff" in out
    pseudo = r.mac(bytes.fromhex("001122334455"))
    assert pseudo[0] & 0x02 and not pseudo[0] & 0x01  # locally administered, unicast
    assert r.mac(bytes.fromhex("01005e0000fb")) == bytes.fromhex("01005e0000fb")


def test_learned_names_are_masked_in_free_text() -> None:
    r = make()
    r.learn_names(["secret.lab.test", "Alice's iPhone._airplay._tcp.local", "wpad", "co.uk"])
    out = r.text(
        "CN=secret.lab.test,O=lab; x.SECRET.lab.test; Alice's iPhone._airplay._tcp.local "
        "asked wpad; see co.uk and wpadding"
    )
    assert "secret" not in out.lower()
    assert "Alice" not in out
    assert " wpad;" not in out
    assert "wpadding" in out  # a word that merely contains a name stays
    assert "co.uk" in out  # a public suffix hides nothing, so it is not learned
    assert r.hides("SECRET.lab.test.") and not r.hides("co.uk")


def test_text_pass_without_learned_names_leaves_names() -> None:
    assert make().text("mail.example.com") == "mail.example.com"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("198.51.100.23", "198.51.100.23"),
        ("198.51.100.23:853", "198.51.100.23"),
        ("[2001:db8::1]:853", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("dns.example", None),
        ("", None),
    ],
)
def test_parse_address(text: str, expected: str | None) -> None:
    parsed = parse_address(text)
    assert (str(parsed) if parsed else None) == expected


def test_from_options_validates_level_and_creates_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config, created = RedactionConfig.from_options(str(tmp_path / "k"), "all", True)
    assert created and config.names is NameLevel.ALL and config.resolvers
    again, created_again = RedactionConfig.from_options(str(tmp_path / "k"))
    assert not created_again and again.key == config.key
    assert again.names is NameLevel.REGISTRABLE and not again.resolvers
    with pytest.raises(ValueError, match="--redact-names"):
        RedactionConfig.from_options(str(tmp_path / "k"), "some")
