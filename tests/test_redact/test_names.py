"""Name masks at each level, against the Public Suffix List the package ships."""

from __future__ import annotations

import ipaddress
import re

import pytest

from dotaudit.redact.key import RedactionKey
from dotaudit.redact.names import NameLevel, psl_snapshot, split_labels, strip_root
from dotaudit.redact.redactor import RedactionConfig, Redactor

KEY = RedactionKey(bytes(range(32)))
TOKEN = re.compile(r"name-[0-9a-f]{12}")


def redactor(level: NameLevel, key: RedactionKey = KEY, **kwargs: object) -> Redactor:
    return Redactor(RedactionConfig(key=key, names=level), **kwargs)  # type: ignore[arg-type]


# Expected registrable domains follow the ICANN section of the PSL (publicsuffix.org):
# co.uk and ac.uk are public suffixes, *.kobe.jp is a wildcard rule with the exception
# !city.kobe.jp, github.io and duckdns.org are private-section entries (ignored here).
REGISTRABLE = [
    ("mail.corp.example.co.uk", "*.example.co.uk"),
    ("example.co.uk", "*.example.co.uk"),
    ("MAIL.Example.CO.UK.", "*.example.co.uk"),
    ("www.ox.ac.uk", "*.ox.ac.uk"),
    ("a.b.c.example.com", "*.example.com"),
    ("www.foo.kobe.jp", "*.www.foo.kobe.jp"),
    ("www.city.kobe.jp", "*.city.kobe.jp"),
    ("alice.github.io", "*.github.io"),
    ("myhost.duckdns.org", "*.duckdns.org"),
    ("co.uk", "co.uk"),
    ("com", "com"),
    ("printer.lan", "*.lan"),
    ("secret.lab.test", "*.test"),
    ("Alice's iPhone._companion-link._tcp.local", "*.local"),
    ("foo.bücher.de", "*.bücher.de"),
    ("23.100.51.198.in-addr.arpa", "*.in-addr.arpa"),
    ("8.b.d.0.1.0.0.2.ip6.arpa", "*.ip6.arpa"),
    ("in-addr.arpa", "in-addr.arpa"),
    ("", ""),
    (".", "."),
]


@pytest.mark.parametrize(("name", "masked"), REGISTRABLE)
def test_registrable_masks(name: str, masked: str) -> None:
    assert redactor(NameLevel.REGISTRABLE).name(name) == masked


@pytest.mark.parametrize(
    "name",
    ["wpad", "FILESERVER", "a..b.example.com", "x.bad\\000tld", "host.-bad-", "x." + "t" * 64],
)
def test_names_without_a_safe_domain_become_tokens(name: str) -> None:
    masked = redactor(NameLevel.REGISTRABLE).name(name)
    assert TOKEN.fullmatch(masked), masked


def test_all_level_tokens_are_keyed_stable_and_case_blind() -> None:
    first = redactor(NameLevel.ALL).name("Mail.Example.com.")
    assert TOKEN.fullmatch(first)
    assert redactor(NameLevel.ALL).name("mail.example.com") == first
    assert redactor(NameLevel.ALL).name("mail2.example.com") != first
    other = redactor(NameLevel.ALL, RedactionKey(bytes(range(1, 33)))).name("mail.example.com")
    assert other != first
    # The same token at registrable level for a name that has no domain to keep.
    assert redactor(NameLevel.REGISTRABLE).name("wpad") == redactor(NameLevel.ALL).name("wpad")


def test_none_level_keeps_names_but_not_the_addresses_they_spell() -> None:
    r = redactor(NameLevel.NONE)
    assert r.name("mail.corp.example.co.uk") == "mail.corp.example.co.uk"
    assert r.name("wpad") == "wpad"
    reverse = r.name("23.100.51.198.in-addr.arpa")
    assert reverse.endswith(".in-addr.arpa") and "198.51.100" not in reverse
    spelled = ".".join(reversed(reverse.removesuffix(".in-addr.arpa").split(".")))
    assert spelled == str(r.address(ipaddress.ip_address("198.51.100.23")))
    # A /24 reverse zone maps to the /24 of the same pseudonyms (prefix preservation).
    zone = r.name("100.51.198.in-addr.arpa").removesuffix(".in-addr.arpa").split(".")
    assert list(reversed(zone)) == spelled.split(".")[:3]
    v6 = r.name(ipaddress.ip_address("2001:db8:1::22").reverse_pointer)
    nibbles = "".join(reversed(v6.removesuffix(".ip6.arpa").split(".")))
    assert ipaddress.IPv6Address(int(nibbles, 16)) == r.address(
        ipaddress.ip_address("2001:db8:1::22")
    )
    assert r.name("not-an.address.in-addr.arpa") == "not-an.address.in-addr.arpa"


@pytest.mark.parametrize("level", list(NameLevel))
def test_ip_literals_are_addresses_at_every_level(level: NameLevel) -> None:
    r = redactor(level, resolvers=[ipaddress.ip_address("9.9.9.9")])
    client = ipaddress.ip_address("198.51.100.23")
    assert r.name("198.51.100.23") == str(r.address(client)) != "198.51.100.23"
    assert r.name("[2001:db8::1]").startswith("[") and "2001:db8" not in r.name("[2001:db8::1]")
    assert r.name("fe80::1%eth0").endswith("%eth0")
    assert r.name("9.9.9.9") == "9.9.9.9"  # a kept resolver written as a name


def test_hostile_names_never_crash_and_hide_their_hosts() -> None:
    r = redactor(NameLevel.REGISTRABLE)
    hostile = [
        "<script>alert(1)</script>.evil.example.com",
        "ctl\\000nul\\007bel.example.com",
        "a\\.b.example.com",
        "x" * 63 + "." + "y" * 63 + ".example.com",
        "\u202egpj.exe.example.com",
        "sub.ex\\x41mple.com",
        "\udcff.example.com",
        "." * 10,
        "\\",
        "a.b.c." * 60 + "com",
    ]
    for name in hostile:
        masked = r.name(name)
        assert masked == "*.example.com" or TOKEN.fullmatch(masked) or masked.startswith("*."), (
            name,
            masked,
        )
        hidden = split_labels(strip_root(name))[0]
        if len(hidden) > 3:
            assert hidden.lower() not in masked.lower()


def test_label_splitting_respects_escapes() -> None:
    assert split_labels("a\\.b.example.com") == ["a\\.b", "example", "com"]
    assert split_labels("a\\\\.b") == ["a\\\\", "b"]
    assert strip_root("example.com.") == "example.com"
    assert strip_root("example.com\\.") == "example.com\\."


def test_psl_snapshot_is_dated_and_names_the_package() -> None:
    snapshot = psl_snapshot()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", snapshot["snapshot"])
    assert snapshot["package"].startswith("publicsuffixlist ")
    assert snapshot["section"] == "ICANN"


def test_the_psl_package_never_fetches() -> None:
    """The package loads its bundled file; only its separate update module downloads."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec("publicsuffixlist")
    assert spec is not None and spec.origin is not None
    from pathlib import Path

    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert not imported & {"urllib", "http", "requests", "socket", "httpx", "ssl"}, imported
