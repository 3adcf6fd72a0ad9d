"""Masking query names and SNI: ``none``, ``registrable`` or ``all``.

``registrable`` keeps what a name says about the organisation and hides what it says
about the host or the user: every name at or under a registrable domain becomes
``*.`` + that domain ("mail.corp.example.co.uk" and "example.co.uk" both become
"*.example.co.uk"), so a table still groups by domain and the star shows that something
was cut, without telling how many labels. Registrable domains come from the ICANN section
of the Public Suffix List as shipped by the ``publicsuffixlist`` package (no fetch at run
time; :func:`psl_snapshot` names the list's date). The private section is left out on
purpose: under it "myhost.duckdns.org" would be a registrable domain and keep "myhost".

Names the ICANN list cannot place are treated as private namespaces: under a top-level
label it does not list (".lan", ".corp", ".internal", ".local", ".test") only that label
stays ("printer.lan" becomes "*.lan"); a single-label name ("wpad", "fileserver"), a name
with an empty label, or one whose top label is not a plain letter-digit-hyphen label
becomes a keyed token, as under ``all``. A name that is itself a public suffix ("co.uk")
is public knowledge and stays.

``all`` replaces each name by ``name-`` and 12 hex digits of HMAC-SHA-256 over the
lower-cased name under the key's name subkey: equal names get equal tokens with one key,
and nothing else about them shows.

At every level an address written as a name (an IP literal in SNI, "[2001:db8::1]") is an
address, pseudonymised like any other through the ``address`` callback, and a reverse
name ("4.3.2.1.in-addr.arpa", "….ip6.arpa") is masked to its zone ("*.in-addr.arpa")
under ``registrable``, or has the address it spells pseudonymised under ``none``.

Names arrive in the escaped forms the events use (``\\DDD`` and ``\\.`` in DNS names,
``\\xNN`` in SNI); a dot after an odd run of backslashes is part of a label.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from enum import StrEnum
from functools import lru_cache
from typing import Any, Protocol

from dotaudit.redact.cryptopan import IPAddress, IPNetwork

TOKEN_PREFIX = "name-"
TOKEN_HEX = 12
CACHE_SIZE = 65536

_LDH = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_REVERSE_ZONES = {("in-addr", "arpa"): 4, ("ip6", "arpa"): 6}
_V4_REVERSE_LABEL = re.compile(r"0|[1-9][0-9]{0,2}")
_V6_REVERSE_LABEL = re.compile(r"[0-9a-f]")


class NameLevel(StrEnum):
    NONE = "none"
    REGISTRABLE = "registrable"
    ALL = "all"


class AddressRewriter(Protocol):
    """What names need from the address side: one address, or one network (reverse zones)."""

    def address(self, address: IPAddress) -> IPAddress: ...

    def network(self, network: IPNetwork) -> IPNetwork: ...


def split_labels(name: str) -> list[str]:
    """Labels of a name in presentation form; escaped dots stay inside their label."""
    if "\\" not in name:
        return name.split(".")
    labels: list[str] = []
    current: list[str] = []
    i, n = 0, len(name)
    while i < n:
        char = name[i]
        if char == "\\" and i + 1 < n:
            current.append(name[i : i + 2])
            i += 2
            continue
        if char == ".":
            labels.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    labels.append("".join(current))
    return labels


def strip_root(name: str) -> str:
    """The name without its one trailing root dot (an escaped final dot stays)."""
    if len(name) > 1 and name.endswith(".") and not _escaped_at(name, len(name) - 1):
        return name[:-1]
    return name


def _escaped_at(text: str, index: int) -> bool:
    run = 0
    while index - run - 1 >= 0 and text[index - run - 1] == "\\":
        run += 1
    return run % 2 == 1


def ip_literal(name: str) -> tuple[IPAddress, str] | None:
    """The address a name spells (brackets and an IPv6 zone allowed) and its zone suffix."""
    text = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    zone = ""
    if "%" in text:
        text, _, rest = text.partition("%")
        zone = "%" + rest
    if not text or not (":" in text or text[0].isdigit()):
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if zone and address.version != 6:
        return None
    return address, zone


def _psl_label(label: str) -> bytes:
    if label.isascii():
        return label.encode("ascii")
    try:
        return label.encode("idna")
    except UnicodeError:
        return b"\xff"  # matches no rule but a wildcard, as the label itself would


@lru_cache(maxsize=1)
def _psl() -> Any:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(only_icann=True)


@lru_cache(maxsize=1)
def psl_snapshot() -> dict[str, str]:
    """Which Public Suffix List the masks come from: package, version, list date."""
    import publicsuffixlist

    snapshot = ""
    try:
        with open(publicsuffixlist.PSLFILE, encoding="utf-8", errors="replace") as handle:
            for _, line in zip(range(40), handle, strict=False):
                if line.startswith("// VERSION:"):
                    snapshot = line.split(":", 1)[1].strip().split("_", 1)[0]
                    break
    except OSError:
        snapshot = ""
    version = getattr(publicsuffixlist, "__version__", "")
    if not snapshot:
        # The package's version ends with the list's date: 1.1.2.20261023.
        tail = version.rsplit(".", 1)[-1]
        if len(tail) == 8 and tail.isdigit():
            snapshot = f"{tail[:4]}-{tail[4:6]}-{tail[6:]}"
    return {
        "package": f"publicsuffixlist {version}".strip(),
        "snapshot": snapshot or "unknown",
        "section": "ICANN",
    }


def public_label_count(labels: list[str]) -> int:
    """How many trailing labels form the public suffix; 0 when the ICANN list has no rule."""
    found = _psl().publicsuffix(tuple(_psl_label(label) for label in labels), False)
    return len(found) if found else 0


class NameMasker:
    """Masks names at one level; results are cached per name."""

    def __init__(self, level: NameLevel, token_key: bytes, addresses: AddressRewriter) -> None:
        self.level = level
        self._token_key = token_key
        self._addresses = addresses
        self._cache: dict[str, str] = {}

    def token(self, name: str) -> str:
        canonical = strip_root(name).lower().encode("utf-8", "surrogatepass")
        digest = hmac.new(self._token_key, canonical, hashlib.sha256).hexdigest()
        return TOKEN_PREFIX + digest[:TOKEN_HEX]

    def mask(self, name: str) -> str:
        cached = self._cache.get(name)
        if cached is None:
            cached = self._mask(name)
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[name] = cached
        return cached

    def _mask(self, name: str) -> str:
        stripped = strip_root(name)
        if stripped in ("", "."):
            return name  # the root or nothing: no host, no user
        literal = ip_literal(stripped)
        if literal is not None:
            address, zone = literal
            text = str(self._addresses.address(address)) + zone
            return f"[{text}]" if stripped.startswith("[") else text
        labels = split_labels(stripped)
        lower = [label.lower() for label in labels]
        if self.level is NameLevel.NONE:
            return self._reverse_pseudonym(lower) or name
        kept = self.kept_labels(lower)
        if kept == 0:
            return self.token(stripped)
        if kept >= len(lower) and (
            tuple(lower[-2:]) in _REVERSE_ZONES or public_label_count(lower) >= len(lower)
        ):
            return ".".join(lower)  # a public suffix (or a reverse zone): public knowledge
        return "*." + ".".join(lower[-kept:])

    def kept_labels(self, lower: list[str]) -> int:
        """How many trailing labels of a name (lower-case, split) stay visible."""
        if self.level is NameLevel.ALL or not lower or "" in lower:
            return 0
        if len(lower) >= 2 and (lower[-2], lower[-1]) in _REVERSE_ZONES:
            if len(lower) == 2:
                return 2  # the reverse zone itself
            if self.level is NameLevel.NONE and self._reverse_network(lower) is not None:
                return 2  # the address it spells is rewritten: hidden where it cannot be
            return 2 if self.level is NameLevel.REGISTRABLE else len(lower)
        if self.level is NameLevel.NONE:
            return len(lower)
        public = public_label_count(lower)
        if public == 0:
            return 1 if len(lower) > 1 and _LDH.fullmatch(lower[-1]) else 0
        return min(public + 1, len(lower))

    @staticmethod
    def _reverse_network(lower: list[str]) -> IPNetwork | None:
        version = _REVERSE_ZONES.get((lower[-2], lower[-1]))
        if version is None or len(lower) < 3:
            return None
        return _reverse_network(lower[:-2], version)

    def _reverse_pseudonym(self, lower: list[str]) -> str | None:
        """Under ``none``: a reverse name with its spelled address pseudonymised."""
        if len(lower) < 3:
            return None
        network = self._reverse_network(lower)
        if network is None:
            return None
        version = _REVERSE_ZONES[(lower[-2], lower[-1])]
        rewritten = self._addresses.network(network)
        zone_text = ".".join(lower[-2:])
        return _reverse_text(rewritten, len(lower) - 2, version) + "." + zone_text


def _reverse_network(spelled: list[str], version: int) -> IPNetwork | None:
    """The network a reverse name spells: 2.0.192.in-addr.arpa is 192.0.2.0/24."""
    digits = list(reversed(spelled))
    if version == 4:
        if len(digits) > 4 or not all(_V4_REVERSE_LABEL.fullmatch(d) for d in digits):
            return None
        octets = [int(d) for d in digits]
        if any(o > 255 for o in octets):
            return None
        packed = bytes(octets + [0] * (4 - len(octets)))
        return ipaddress.ip_network((packed, 8 * len(octets)))
    if len(digits) > 32 or not all(_V6_REVERSE_LABEL.fullmatch(d) for d in digits):
        return None
    value = int("".join(digits).ljust(32, "0"), 16)
    return ipaddress.ip_network((value.to_bytes(16, "big"), 4 * len(digits)))


def _reverse_text(network: IPNetwork, count: int, version: int) -> str:
    if version == 4:
        octets = network.network_address.packed[:count]
        return ".".join(str(o) for o in reversed(octets))
    nibbles = network.network_address.packed.hex()[:count]
    return ".".join(reversed(nibbles))
