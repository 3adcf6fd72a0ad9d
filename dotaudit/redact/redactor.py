"""One redaction run: which addresses stay, and the rewriting of addresses, names and text.

The rule for addresses is simple so that it can be trusted: every address is
pseudonymised (Crypto-PAn under the key's address subkey) except

- resolver addresses, unless ``RedactionConfig.resolvers`` asks to hide them too: they
  are what the admin must act on. An address that is also seen as a client (a
  forwarder) counts as a client;
- addresses that identify nobody: loopback, unspecified, multicast and the IPv4 limited
  broadcast.

An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``) gets the IPv4 pseudonym inside the
same prefix, so one host keeps one pseudonym in both spellings. MAC addresses (other
than broadcast and multicast) become keyed, locally administered unicast addresses.

:meth:`Redactor.text` rewrites free text: every address in any spelling (dotted,
compressed or expanded IPv6, with a zone, a prefix length or a port, inside a reverse
name), every MAC address, and every name-like token that contains a name learned with
:meth:`Redactor.learn_names` whose mask hides something. Names the tokenizer cannot
see as tokens (spaces, punctuation: mDNS instance names) are replaced wherever they
occur, ignoring case.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from dotaudit.redact.cryptopan import CryptoPAn, IPAddress, IPNetwork
from dotaudit.redact.key import RedactionKey, load_or_create_key
from dotaudit.redact.names import NameLevel, NameMasker, ip_literal, split_labels, strip_root

MAX_TOKEN_LABELS = 128
"""A name token with more labels than a DNS name can have is masked whole, unchecked."""

_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")

_TEXT_ADDRESS = re.compile(
    r"""
    (?P<rev>(?<![\w.\\-])(?:[0-9a-f]{1,3}\.){1,32}(?:in-addr|ip6)\.arpa(?![\w-]))
    |(?P<mac>(?<![0-9a-f:.-])(?:[0-9a-f]{2}[:-]){5}[0-9a-f]{2}(?![0-9a-f:-]))
    |(?P<v6>(?<![0-9a-z:.])(?:[0-9a-f]{0,4}:){2,7}(?:[0-9a-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?
        (?:%[0-9a-z_.-]+)?(?:/\d{1,3})?(?![0-9a-z:]))
    |(?P<v4>(?<![0-9a-z.:])\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?(?![0-9a-z]|\.\d))
    """,
    re.VERBOSE | re.IGNORECASE,
)
_NAME_TOKEN = re.compile(r"(?<![\w*\\-])(?:[\w*-]|\\.)+(?:\.(?:[\w*-]|\\.)+)*")


def identifies_nobody(address: IPAddress) -> bool:
    return (
        address.is_loopback
        or address.is_unspecified
        or address.is_multicast
        or address == _LIMITED_BROADCAST
    )


def parse_address(text: str) -> IPAddress | None:
    """An address, also from the ``addr:port`` and ``[v6]:port`` forms reports use."""
    text = text.strip()
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        pass
    if text.startswith("["):
        inner, _, port = text[1:].partition("]:")
    else:
        inner, _, port = text.rpartition(":")
    if not port.isdigit():
        return None
    try:
        return ipaddress.ip_address(inner)
    except ValueError:
        return None


@dataclass(frozen=True)
class RedactionConfig:
    """What ``--redact``, ``--redact-key``, ``--redact-names`` and ``--redact-resolvers`` ask."""

    key: RedactionKey
    names: NameLevel = NameLevel.REGISTRABLE
    resolvers: bool = False
    """Pseudonymise resolver addresses (and mask their names) too."""

    @classmethod
    def from_options(
        cls, key_file: str, names: str = "registrable", resolvers: bool = False
    ) -> tuple[RedactionConfig, bool]:
        """The configuration from command-line values; the bool says the key file is new.

        Raises ``KeyFileError`` (an ``InputError``) for an unusable key file and
        ``ValueError`` for an unknown names level.
        """
        try:
            level = NameLevel(names)
        except ValueError:
            known = ", ".join(level.value for level in NameLevel)
            raise ValueError(f"--redact-names: {names!r} is not one of {known}") from None
        key, created = load_or_create_key(key_file)
        return cls(key=key, names=level, resolvers=resolvers), created


class Redactor:
    """Pseudonyms and masks for one report (and its evidence), under one configuration."""

    def __init__(
        self,
        config: RedactionConfig,
        *,
        resolvers: Iterable[IPAddress] = (),
        clients: Iterable[IPAddress] = (),
    ) -> None:
        self.config = config
        self._pan = CryptoPAn(config.key.subkey("addresses"))
        self._mac_key = config.key.subkey("macs")
        client_set = {_canonical(a) for a in clients}
        resolver_set = {_canonical(a) for a in resolvers}
        self.kept: frozenset[IPAddress] = frozenset(
            () if config.resolvers else resolver_set - client_set
        )
        self.known: frozenset[IPAddress] = frozenset(client_set | resolver_set)
        self.masker = NameMasker(config.names, config.key.subkey("names"), self)
        self._hidden_names: set[str] = set()
        self._odd_names: set[str] = set()
        self._odd_pattern: re.Pattern[str] | None = None
        self._mac_cache: dict[bytes, bytes] = {}
        self.pseudonymised: set[IPAddress] = set()
        self.masked_names: set[str] = set()

    # -- addresses ------------------------------------------------------------------

    def keeps(self, address: IPAddress) -> bool:
        address = _canonical(address)
        return address in self.kept or identifies_nobody(address)

    def address(self, address: IPAddress) -> IPAddress:
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
            address = ipaddress.IPv6Address(address.packed)
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        if mapped is not None:
            inner = self.address(mapped)
            return ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + inner.packed)
        if self.keeps(address):
            return address
        self.pseudonymised.add(address)
        return self._pan.pseudonymise(address)

    def network(self, network: IPNetwork) -> IPNetwork:
        base = network.network_address
        if identifies_nobody(base) or (network.num_addresses == 1 and self.keeps(base)):
            return network
        self.pseudonymised.add(base)
        return self._pan.pseudonymise_network(network)

    def packed(self, raw: bytes) -> bytes:
        """The pseudonym of an address in network byte order (the pcap fast path)."""
        return self.address(ipaddress.ip_address(raw)).packed if raw else raw

    def mac(self, raw: bytes) -> bytes:
        """A keyed, locally administered unicast MAC for a unicast MAC; others stay."""
        if len(raw) != 6 or raw[0] & 1 or raw == b"\0" * 6:
            return raw
        cached = self._mac_cache.get(raw)
        if cached is None:
            digest = hmac.new(self._mac_key, raw, hashlib.sha256).digest()
            cached = bytes([(digest[0] & 0xFC) | 0x02]) + digest[1:6]
            self._mac_cache[bytes(raw)] = cached
        return cached

    # -- names ----------------------------------------------------------------------

    def name(self, name: str) -> str:
        masked = self.masker.mask(name)
        if masked != name:
            self.masked_names.add(name)
        return masked

    def learn_names(self, names: Iterable[str]) -> None:
        """Names whose every appearance in free text must be masked too."""
        for name in names:
            if not isinstance(name, str):
                continue
            stripped = strip_root(name)
            if not stripped or stripped == "." or ip_literal(stripped) is not None:
                continue
            masked = self.masker.mask(stripped)
            if masked.lower() == stripped.lower():
                continue
            lower = stripped.lower()
            self._hidden_names.add(lower)
            if _NAME_TOKEN.fullmatch(stripped) is None and lower not in self._odd_names:
                self._odd_names.add(lower)
                self._odd_pattern = None

    def hides(self, name: str) -> bool:
        """Whether ``name`` was learned and its mask hides part of it."""
        return strip_root(name).lower() in self._hidden_names

    # -- free text ------------------------------------------------------------------

    def text(self, text: str) -> str:
        out = _TEXT_ADDRESS.sub(self._text_address, text)
        if self._hidden_names:
            out = _NAME_TOKEN.sub(self._text_name, out)
            if self._odd_names:
                if self._odd_pattern is None:
                    ordered = sorted(self._odd_names, key=len, reverse=True)
                    self._odd_pattern = re.compile(
                        "|".join(re.escape(n) for n in ordered), re.IGNORECASE
                    )
                out = self._odd_pattern.sub(lambda m: self.name(m.group(0)), out)
        return out

    def _text_address(self, match: re.Match[str]) -> str:
        token = match.group(0)
        kind = match.lastgroup
        if kind == "rev":
            return self.name(token)
        if kind == "mac":
            raw = bytes.fromhex(re.sub(r"[:-]", "", token))
            separator = token[2]
            return separator.join(f"{b:02x}" for b in self.mac(raw))
        body, slash, length = token.partition("/")
        if slash:
            try:
                network = ipaddress.ip_network(f"{body}/{int(length)}", strict=False)
            except ValueError:
                return token
            if network.network_address != ipaddress.ip_address(body):
                # A host with its prefix length: the host's pseudonym lies in the
                # pseudonymised network (prefix preservation), so say it the same way.
                return f"{self.address(ipaddress.ip_address(body))}/{length}"
            rewritten = self.network(network)
            return f"{rewritten.network_address}/{rewritten.prefixlen}"
        zone = ""
        if "%" in body:
            body, _, rest = body.partition("%")
            zone = "%" + rest
        try:
            address = ipaddress.ip_address(body)
        except ValueError:
            return self._address_with_port(token) or token
        if (
            kind == "v6"
            and _canonical(address) not in self.known
            and not self.keeps(address)
            and not zone
        ):
            with_port = self._address_with_port(token)
            if with_port is not None:
                return with_port
        return str(self.address(address)) + zone

    def _address_with_port(self, token: str) -> str | None:
        """``2001:db8::1:853`` is ambiguous; it is read as address and port when the
        address part is one the report knows (None otherwise)."""
        inner, _, port = token.rpartition(":")
        if not port.isdigit() or not inner:
            return None
        try:
            address = ipaddress.ip_address(inner)
        except ValueError:
            return None
        if _canonical(address) not in self.known:
            return None
        return f"{self.address(address)}:{port}"

    def _text_name(self, match: re.Match[str]) -> str:
        token = match.group(0)
        labels = [label.lower() for label in split_labels(token)]
        if len(labels) > MAX_TOKEN_LABELS:
            return self.name(token)
        hidden = self._hidden_names
        count = len(labels)
        if count == 1:
            return self.name(token) if labels[0] in hidden else token
        for start in range(count):
            for stop in range(start + 1, count + 1):
                if ".".join(labels[start:stop]) in hidden:
                    return self.name(token)
        return token

    # -- the record ------------------------------------------------------------------

    def summary(self) -> dict[str, object]:
        from dotaudit.redact.names import psl_snapshot

        names: dict[str, object] = {
            "level": self.config.names.value,
            "masked": len(self.masked_names),
        }
        if self.config.names is NameLevel.REGISTRABLE:
            names["public_suffix_list"] = psl_snapshot()
        return {
            "key_fingerprint": self.config.key.fingerprint,
            "addresses": {
                "scheme": "Crypto-PAn (AES-128, prefix-preserving), IPv4 and IPv6",
                "resolvers": "pseudonymised" if self.config.resolvers else "kept",
                "pseudonymised": len(self.pseudonymised),
                "kept_resolvers": len(self.kept),
                "never_rewritten": ["loopback", "unspecified", "multicast", "255.255.255.255"],
            },
            "names": names,
        }


def _canonical(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            address = ipaddress.IPv6Address(address.packed)
        mapped = address.ipv4_mapped
        if mapped is not None:
            return mapped
    return address
