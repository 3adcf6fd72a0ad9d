"""Plain words for the report's keys and values: labels with units, outcomes as phrases.

The JSON report keeps its keys (``delay_s``, ``queries_est``, ``syn_unanswered``); a
person reading the HTML report should never meet them. Every evidence key, table column
and policy setting the analyzer writes has a label here, and its value a formatter that
adds the unit ("2.0 s after the failed attempt", "100 %"). A key this table does not know
still gets words: underscores become spaces and unit suffixes become units.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dotaudit.model.coerce import num
from dotaudit.render.html_format import fmt_ts, plural, text_of

Formatter = Callable[[Any], str]

OUTCOME_WORDS = {
    "established": "established",
    "mid_stream": "already running when the capture started",
    "syn_unanswered": "SYN to port 853 never answered",
    "reset": "connection reset",
    "reset_in_handshake": "reset during the TLS handshake",
    "refused": "SYN answered by a reset",
    "icmp_rejected": "rejected by ICMP",
    "tls_alert": "ended by a TLS alert",
    "handshake_incomplete": "TLS handshake not completed",
    "aborted_after_server_hello": "aborted after the server's hello",
    "closed_fin": "closed normally",
    "closed_rst": "closed by a reset",
    "udp": "UDP",
    "unknown": "unknown",
    "unpadded": "not padded",
    "padded": "padded",
    "partially_padded": "partly padded",
    "partial": "partly padded",
}
"""DoT outcomes, TCP outcomes, failure modes and padding verdicts, as phrases."""

SERVICE_WORDS = {"mdns": "mDNS", "llmnr": "LLMNR", "dns": "DNS", "doh": "DoH", "doq": "DoQ"}


def words_of(value: object) -> str:
    """An enumerated value (an outcome, a verdict) in words; other text as it is."""
    text = str(value)
    phrase = OUTCOME_WORDS.get(text) or SERVICE_WORDS.get(text)
    if phrase:
        return phrase
    return text.replace("_", " ") if text.islower() and "_" in text else text


def seconds(value: object) -> str:
    number = num(value)
    if number is None:
        return text_of(value)
    if number >= 100:
        return f"{number:,.0f} s"
    if number >= 0.1:
        return f"{number:.1f} s"
    return f"{number * 1000:.0f} ms" if number >= 0.001 else f"{number * 1e6:.0f} µs"


def after_failure(value: object) -> str:
    text = seconds(value)
    return f"{text} after the failed attempt" if num(value) is not None else text


def percent(value: object) -> str:
    number = num(value)
    return text_of(value) if number is None else f"{number:.0%}"


def count(value: object) -> str:
    number = num(value)
    if number is None or isinstance(value, bool):
        return text_of(value)
    return f"{int(number):,}" if number == int(number) else f"{number:,.2f}"


def yes_no(value: object) -> str:
    return "yes" if value is True else "no" if value is False else text_of(value)


def listing(value: object) -> str:
    return text_of(value) if value not in ([], (), None) else "none"


def tally(value: object) -> str:
    """``{"A": 3, "MX": 1}`` as "A ×3, MX ×1"; outcomes and services in words."""
    if isinstance(value, dict):
        if not value:
            return "none"
        items = list(value.items())[:20]
        shown = ", ".join(f"{words_of(k)} ×{text_of(v)}" for k, v in items)
        return shown + (f" … ({len(value) - 20} more)" if len(value) > 20 else "")
    if isinstance(value, list):
        return ", ".join(words_of(v) for v in value[:20]) or "none"
    return words_of(value)


def upper(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(v).upper() for v in value[:20]) or "none"
    return str(value).upper() if value is not None else "—"


def octets(value: object) -> str:
    if isinstance(value, list):
        return (", ".join(text_of(v) for v in value[:20]) or "none") + " octets"
    return f"{text_of(value)} octets"


def prefix_bits(value: object) -> str:
    number = num(value)
    return text_of(value) if number is None else f"/{int(number)}"


def timestamp(value: object) -> str:
    return fmt_ts(value)


FIELDS: dict[str, tuple[str, Formatter]] = {
    "alerts": ("TLS alerts", listing),
    "alpn": ("ALPN", listing),
    "alpn_offered": ("ALPN offered", listing),
    "approved_by_policy": ("approved by the policy", yes_no),
    "attempts": ("DoT attempts", count),
    "authorities": ("HTTP authorities", listing),
    "client_padded_fraction": ("client records padded to 128 octets", percent),
    "server_padded_fraction": ("resolver records padded to 468 octets", percent),
    "close_reason": ("how it ended", words_of),
    "connections": ("connections", count),
    "count": ("connections", count),
    "delay_s": ("plaintext began", after_failure),
    "destinations": ("sent to", listing),
    "doh_requests": ("DoH requests", count),
    "duration_s": ("duration", seconds),
    "failure_text": ("what happened", str),
    "failure": ("failure mode", words_of),
    "failures": ("failure modes", tally),
    "hellos": ("ClientHellos", count),
    "icmp": ("ICMP errors", listing),
    "ja4": ("JA4 fingerprints", listing),
    "ja3": ("JA3 fingerprints", listing),
    "kind": ("kind", words_of),
    "known_resolver": (
        "known public resolver",
        lambda v: yes_no(v) if isinstance(v, bool) else text_of(v),
    ),
    "max_source_prefix": ("longest source prefix sent", prefix_bits),
    "name_count": ("distinct names", count),
    "names": ("names", listing),
    "note": ("note", str),
    "outcome": ("outcome", words_of),
    "outcomes": ("outcomes", tally),
    "outer_sni": ("outer SNI", listing),
    "packets": ("packets", count),
    "padded_queries": ("queries with EDNS padding", count),
    "padded_responses": ("responses with EDNS padding", count),
    "plaintext_queries": ("plaintext queries after the failure", count),
    "plaintext_servers": ("plaintext resolvers", listing),
    "plaintext_server": ("plaintext resolver", text_of),
    "port": ("port", text_of),
    "ports": ("ports", listing),
    "provider": ("provider", text_of),
    "qname_count": ("distinct names asked", count),
    "qnames": ("names asked", listing),
    "qtypes": ("query types", tally),
    "queries": ("queries", count),
    "queries_est": ("queries (estimated from record sizes)", count),
    "records": ("TLS records", count),
    "requests": ("requests", count),
    "reset_injected": ("reset looks injected (TTL differs)", yes_no),
    "reset_ttl": ("TTL of the reset", listing),
    "responses": ("responses", count),
    "roles": ("roles", listing),
    "same_names_repeated": ("the same names asked again", yes_no),
    "server_count": ("servers", count),
    "server_ttls": ("TTLs of the server's own packets", listing),
    "servers": ("servers", listing),
    "services": ("by protocol", tally),
    "service": ("protocol", words_of),
    "sessions": ("DoT sessions", count),
    "sizes": ("TLS record sizes", octets),
    "sni": ("SNI", listing),
    "snis": ("SNI", listing),
    "subnet_count": ("distinct subnets", count),
    "subnets": ("client subnets sent", listing),
    "syn_retransmits": ("SYN retransmissions", count),
    "transport": ("transport", upper),
    "transports": ("transports", upper),
    "verdict": ("padding", words_of),
    "versions": ("TLS versions", tally),
    "via": ("recognised by", listing),
    "window_s": ("fallback window", seconds),
    "first_ts": ("first seen (UTC)", timestamp),
    "last_ts": ("last seen (UTC)", timestamp),
    "first_frame": ("first frame", text_of),
    "client_hellos_dropped": ("ClientHellos not kept (cap)", count),
    "groups_dropped": ("groups not kept (cap)", count),
    "pairs_dropped": ("pairs not kept (cap)", count),
    "client": ("client", text_of),
    "server": ("server", text_of),
    "protocol": ("protocol", words_of),
    # the policy
    "source": ("policy file", text_of),
    "internal_resolvers": ("internal resolvers (plaintext allowed)", listing),
    "approved_dot": ("approved DoT resolvers", listing),
    "fallback_window_s": ("fallback window", seconds),
    "severity_overrides": ("severity overrides", tally),
    "treat_loopback_as_network": ("DNS to loopback counts as network", yes_no),
}

RAW_VALUES = frozenset({"ja4", "ja3", "cipher", "spki_sha256", "sha256"})
"""Values that are identifiers to copy, not words: shown as code."""

_SUFFIXES: tuple[tuple[str, str, Formatter], ...] = (
    ("_ms", "", lambda v: f"{text_of(v)} ms"),
    ("_s", "", seconds),
    ("_est", " (estimated)", count),
    ("_ts", "", timestamp),
    ("_fraction", "", percent),
)


def label(key: object) -> str:
    """The label of a key, in words."""
    return field(key)[0]


def field(key: object) -> tuple[str, Formatter]:
    """(label, value formatter) of a key; unknown keys get words and their unit."""
    text = str(key)
    known = FIELDS.get(text)
    if known is not None:
        return known
    for suffix, note, formatter in _SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            return text[: -len(suffix)].replace("_", " ") + note, formatter
    return text.replace("_", " "), text_of


def value(key: object, item: object) -> str:
    """The value of ``key`` as shown: with its unit, enumerations in words."""
    return field(key)[1](item)


def how_many(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {plural(n, one, many)}"
