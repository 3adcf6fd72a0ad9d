"""JA3 and JA4 client fingerprints of a parsed ClientHello.

JA3 (Salesforce): ``version,ciphers,extensions,groups,point_formats`` in decimal, GREASE
removed, md5. JA4 follows FoxIO's technical_details/JA4.md. One deliberate difference
from nDPI: nDPI prints ``d`` (domain) in JA4_a for every TLS ClientHello, even when it
also reports "Missing SNI" (e.g. its dns_dot.pcap and doh.pcapng results). The spec says
``d`` only when the server_name extension is present, else ``i``; we follow the spec, so
our JA4 for such hellos differs from nDPI's in that one letter.
"""

from __future__ import annotations

import hashlib
from typing import TypeVar

from dotaudit.dissect.tls import EXT_ALPN, EXT_SNI, ClientHello

_V = TypeVar("_V")


def is_grease(value: int) -> bool:
    """RFC 8701 GREASE values: 0x0a0a, 0x1a1a, ... 0xfafa."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


_GREASE = frozenset(0x0A0A + 0x1010 * i for i in range(16))


def _no_grease(values: tuple[int, ...]) -> tuple[int, ...]:
    if _GREASE.isdisjoint(values):
        return values
    return tuple([v for v in values if v not in _GREASE])


MAX_CACHED = 512
"""Distinct fingerprint inputs remembered per cache; the oldest is dropped beyond this.
A network's client stacks are few; what fills a larger cache is browsers that shuffle
their extensions on every connection (RFC 8446 allows any order), a JA3 key each, never
seen again. On the benchmark's 1M mix, 4,096 entries hit 47.7% of JA3 look-ups and 256
hit 46.6% (JA4 sorts the extensions: 19 keys, 99.7% hits either way); the 4,096 cost
about 3 MB."""
MAX_KEYED_VALUES = 512
"""Hellos listing more values than this in total are fingerprinted but not remembered: a
key holds its lists, so without this a hostile capture of huge hellos could pin
MAX_CACHED x 64 KiB of integers. Real hellos list well under 200."""

_JA3_CACHE: dict[tuple[object, ...], tuple[str, str]] = {}
_JA4_CACHE: dict[tuple[object, ...], str] = {}


def _remember(cache: dict[tuple[object, ...], _V], key: tuple[object, ...], value: _V) -> _V:
    # Clients repeat the same hello (bar random, session id and key shares) on every
    # connection, so few distinct keys exist; FIFO eviction keeps hostile input bounded.
    if len(cache) >= MAX_CACHED:
        del cache[next(iter(cache))]
    cache[key] = value
    return value


def ja3_pair(ch: ClientHello) -> tuple[str, str]:
    """The JA3 string and its md5, from one cache look-up."""
    # Keyed on the GREASE-free lists: clients draw fresh GREASE values per connection.
    key = (
        ch.legacy_version,
        _no_grease(ch.ciphers),
        _no_grease(ch.extensions),
        _no_grease(ch.groups),
        ch.ec_point_formats,
    )
    hit = _JA3_CACHE.get(key)
    if hit is not None:
        return hit
    text = _ja3_text(ch)
    pair = text, hashlib.md5(text.encode("ascii"), usedforsecurity=False).hexdigest()
    if len(key[1]) + len(key[2]) + len(key[3]) + len(key[4]) > MAX_KEYED_VALUES:
        return pair
    return _remember(_JA3_CACHE, key, pair)


def ja3_string(ch: ClientHello) -> str:
    return ja3_pair(ch)[0]


def ja3(ch: ClientHello) -> str:
    return ja3_pair(ch)[1]


def _ja3_text(ch: ClientHello) -> str:
    return ",".join(
        (
            str(ch.legacy_version),
            "-".join(map(str, _no_grease(ch.ciphers))),
            "-".join(map(str, _no_grease(ch.extensions))),
            "-".join(map(str, _no_grease(ch.groups))),
            "-".join(map(str, ch.ec_point_formats)),
        )
    )


_JA4_VERSIONS = {
    0x0304: "13",
    0x0303: "12",
    0x0302: "11",
    0x0301: "10",
    0x0300: "s3",
    0x0002: "s2",
    0xFEFF: "d1",
    0xFEFD: "d2",
    0xFEFC: "d3",
}


def ja4_version(ch: ClientHello) -> str:
    """Highest non-GREASE supported_versions value, else the legacy version; unknown "00".

    "Highest" is numeric, as the spec says: a hello listing a TLS 1.3 draft (0x7fNN) or
    Fizz (0xfbNN) therefore maps to "00", as nDPI also prints for such hellos.
    """
    offered = _no_grease(ch.supported_versions)
    version = max(offered) if offered else ch.legacy_version
    return _JA4_VERSIONS.get(version, "00")


def _unescape(text: str) -> bytes:
    r"""Invert :func:`dotaudit.dissect.tls.escape_text` (it escapes ``\`` too)."""
    if "\\" not in text:
        return text.encode("ascii")
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1 : i + 2] == "x" and len(text) >= i + 4:
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        else:
            out.append(ord(text[i]) & 0xFF)
            i += 1
    return bytes(out)


def _alnum(b: int) -> bool:
    return 0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A


def ja4_alpn(ch: ClientHello) -> str:
    """First and last character of the first ALPN value; hex rule when either is not alnum."""
    if not ch.alpn:
        return "00"
    raw = _unescape(ch.alpn[0])
    if not raw:
        return "00"
    if _alnum(raw[0]) and _alnum(raw[-1]):
        return chr(raw[0]) + chr(raw[-1])
    hexed = raw.hex()
    return hexed[0] + hexed[-1]


def _hash12(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:12]


def ja4(ch: ClientHello, *, quic: bool = False) -> str:
    # JA4 sorts ciphers and extensions, so the key uses them sorted, GREASE-free: Chrome
    # permutes its extension order and draws fresh GREASE on every connection.
    key = (
        quic,
        ja4_version(ch),
        tuple(sorted(_no_grease(ch.ciphers))),
        tuple(sorted(_no_grease(ch.extensions))),
        ch.alpn[:1],
        _no_grease(ch.signature_algorithms),
    )
    hit = _JA4_CACHE.get(key)
    if hit is not None:
        return hit
    if len(key[2]) + len(key[3]) + len(key[5]) > MAX_KEYED_VALUES:
        return _ja4(ch, quic)
    return _remember(_JA4_CACHE, key, _ja4(ch, quic))


def _hex_list(values: tuple[int, ...] | list[int]) -> str:
    # One %-format for the whole list: a third of the cost of a join over per-value
    # f-strings, and a JA4 is computed for every hello the cache has not seen.
    return ("%04x," * len(values) % tuple(values))[:-1]


def _ja4(ch: ClientHello, quic: bool) -> str:
    ciphers = _no_grease(ch.ciphers)
    exts = _no_grease(ch.extensions)
    part_a = (
        ("q" if quic else "t")
        + ja4_version(ch)
        + ("d" if EXT_SNI in exts else "i")
        + f"{min(len(ciphers), 99):02d}"
        + f"{min(len(exts), 99):02d}"
        + ja4_alpn(ch)
    )
    part_b = _hash12(_hex_list(sorted(ciphers))) if ciphers else "0" * 12
    hashed_exts = sorted(e for e in exts if e not in (EXT_SNI, EXT_ALPN))
    if hashed_exts:
        text = _hex_list(hashed_exts)
        sigalgs = _no_grease(ch.signature_algorithms)
        if sigalgs:
            text += "_" + _hex_list(sigalgs)
        part_c = _hash12(text)
    else:
        part_c = "0" * 12
    return f"{part_a}_{part_b}_{part_c}"
