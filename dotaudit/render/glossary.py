"""The report's short glossary, and the first use of each term linked to it.

:class:`TermLinker` is called by the template, in document order, with the text it is
about to show; it returns ``(piece, term key or None)`` pieces, and a term gets a key (a
link to ``#g-<key>``) only the first time it appears. No markup is made here: the
template writes the links and escapes every piece.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    key: str
    name: str
    pattern: str
    meaning: str


GLOSSARY: tuple[Term, ...] = (
    Term(
        "dot",
        "DoT",
        r"\bDoT\b",
        "DNS over TLS (RFC 7858): DNS queries inside a TLS connection to port 853. Observers "
        "see that a resolver is used, not the names asked.",
    ),
    Term(
        "doh",
        "DoH",
        r"\bDoH\b",
        "DNS over HTTPS (RFC 8484): DNS inside HTTPS, usually on port 443, where it looks like "
        "web traffic.",
    ),
    Term(
        "doq",
        "DoQ",
        r"\bDoQ\b",
        "DNS over QUIC (RFC 9250): DNS inside a QUIC connection, on UDP port 853.",
    ),
    Term(
        "strict",
        "strict mode",
        r"\bstrict(?:[- ]mode)?\b",
        "The strict privacy profile (RFC 8310 §5): the client uses only an encrypted resolver "
        "it can authenticate, and fails rather than send a name in plaintext.",
    ),
    Term(
        "opportunistic",
        "opportunistic mode",
        r"\bopportunistic(?: mode)?\b",
        "The opportunistic privacy profile (RFC 8310 §5): the client tries encryption and "
        "uses plaintext when it fails, so whoever blocks port 853 sees every name.",
    ),
    Term(
        "sni",
        "SNI",
        r"\bSNI\b",
        "Server Name Indication (RFC 6066): the server name a TLS client sends unencrypted "
        "when it connects. It tells the network which resolver or site is meant.",
    ),
    Term(
        "alpn",
        "ALPN",
        r"\bALPN\b",
        "Application-Layer Protocol Negotiation (RFC 7301): the protocol names a TLS client "
        "offers (dot, h2, doq), sent unencrypted.",
    ),
    Term(
        "ja4",
        "JA4",
        r"\bJA4\b",
        "A fingerprint of a TLS ClientHello: the same client software gives the same value, "
        "so it narrows down which program made a connection.",
    ),
    Term(
        "spki",
        "SPKI pin",
        r"\bSPKI(?: pins?)?\b",
        "A SHA-256 hash of a server's public key (RFC 7858 §4.2): a client that pins it "
        "accepts that key and no other, whoever signed the certificate.",
    ),
    Term(
        "ecs",
        "ECS",
        r"\bECS\b|\bEDNS Client Subnet\b",
        "EDNS Client Subnet (RFC 7871): part of the client's address, which a resolver passes "
        "on to every DNS server it asks.",
    ),
)

_PATTERN = re.compile("|".join(f"(?P<{t.key}>{t.pattern})" for t in GLOSSARY))

Piece = tuple[str, str | None]


class TermLinker:
    """Pieces of text with the first appearance of each glossary term marked."""

    def __init__(self) -> None:
        self.linked: set[str] = set()

    def __call__(self, text: object) -> list[Piece]:
        value = "" if text is None else str(text)
        if len(self.linked) == len(GLOSSARY):
            return [(value, None)]
        pieces: list[Piece] = []
        at = 0
        for match in _PATTERN.finditer(value):
            key = match.lastgroup
            if key is None or key in self.linked:
                continue
            self.linked.add(key)
            if match.start() > at:
                pieces.append((value[at : match.start()], None))
            pieces.append((match.group(0), key))
            at = match.end()
        if at < len(value) or not pieces:
            pieces.append((value[at:], None))
        return pieces


def code_pieces(text: str) -> list[tuple[str, bool]]:
    """``text`` split at backticks: (piece, is code). Settings to type are code."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: nothing is code
        return [(text, False)]
    return [(part, index % 2 == 1) for index, part in enumerate(parts) if part]
