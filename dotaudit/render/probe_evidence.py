"""A probe check's evidence as labelled rows with units, for the HTML and text reports.

The JSON keeps the checks' own keys (``connect_ms``, ``error_kind``); a reader gets
phrases ("TCP connect time: 0.11 ms"). Keys this module has no phrase for are spelled out
word by word, with the unit their suffix names, so that no raw key reaches a reader. The
evidence may come from a hand-edited report: every value is coerced, lists and nesting are
capped, and empty values (None) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from dotaudit.model.coerce import num

MAX_ROWS = 30
MAX_ITEMS = 8
MAX_DEPTH = 2

LABELS = {
    "class": "result",
    "connect_ms": "TCP connect time",
    "errno": "socket error",
    "error_kind": "what went wrong",
    "error": "error",
    "reason": "why",
    "port": "port",
    "udp53": "UDP 53",
    "tcp53": "TCP 53",
    "tcp443": "TCP 443",
    "udp853": "UDP 853",
    "answered": "answered",
    "rcode": "response code",
    "first_rcode": "first response code",
    "query_ms": "query time",
    "versions": "versions",
    "method": "method",
    "reach_853": "DoT port",
    "replies": "replies to raw SYNs",
    "reference_ttls": "TTL of the server's own replies",
    "injected": "reset injected on the path",
    "udp53_answers": "UDP 53 answers",
    "tcp53_answers": "TCP 53 answers",
    "mechanism": "likely cause",
    "advertised": "keepalive advertised",
    "advertised_units": "advertised timeout (units of 100 ms)",
    "advertised_ms": "advertised idle timeout",
    "idle_close": "idle close",
    "measured_idle_close_ms": "closed after idle",
    "idle_end": "how the idle wait ended",
    "waited_s": "waited idle",
    "max_wait_s": "longest idle wait allowed",
    "wait_needed_s": "--max-idle-wait that would measure the close",
    "mismatch": "advertised and applied timeouts differ",
    "leaf_pin": "server's key pin (SPKI SHA-256)",
    "chain_pins": "key pins of the chain",
    "pins_given": "pins given",
    "matched": "pins matched",
    "trust_store": "trust store",
    "sent": "certificates sent",
    "verified_length": "certificates in the verified chain",
    "openssl": "OpenSSL says",
    "san_dns": "DNS names in the certificate",
    "san_ip": "addresses in the certificate",
    "san_count": "names in the certificate",
    "reference": "checked against",
    "not_before": "valid from",
    "not_after": "valid until",
    "days_left": "days left",
    "warn_days": "warning at",
    "fail_days": "failure at",
    "key_type": "key type",
    "key_bits": "key size",
    "tls_version": "TLS version",
    "alpn": "ALPN",
    "handshake_ms": "TLS handshake time",
    "full_handshake_ms": "full TLS handshake time",
    "resumed_handshake_ms": "resumed TLS handshake time",
    "response_len": "response length",
    "query_len": "query length",
    "padding_len": "padding length",
    "multiple_of_468": "a multiple of 468 octets",
    "time_to_first_answer_ms": "first answer after",
    "first_query_ms": "first query time",
    "reused_query_ms": "query time on a reused connection",
    "median_ms": "median",
    "online_only": "needs internet (--online)",
    "plain": "over plaintext DNS",
    "tls": "over DoT",
    "plain_port": "plaintext DNS port",
    "port_443": "certificate on TCP 443",
    "handshake_error": "TLS handshake error",
    "http_status": "HTTP status",
    "http_version": "HTTP version",
    "content_type": "content type",
    "nsid": "NSID",
}

SETTINGS = {
    "mode": "mode (--mode)",
    "timeout_s": "time per network step (--timeout)",
    "target_budget_s": "time per resolver (--budget)",
    "max_idle_wait_s": "wait for the idle close (--max-idle-wait)",
    "ca_file": "CA bundle (--ca)",
    "pins": "SPKI pins (--pin)",
    "checks": "checks run",
    "targets_given": "targets given",
    "interrupted": "interrupted",
    "aggregate": "totals",
}
"""The probe settings of ``probe_config`` and ``bulk``, named with their options."""

WORDS = {
    "tls": "TLS", "dns": "DNS", "edns": "EDNS", "udp": "UDP", "tcp": "TCP", "ttl": "TTL",
    "alpn": "ALPN", "spki": "SPKI", "id": "ID", "http": "HTTP", "quic": "QUIC",
    "nsid": "NSID", "ip": "IP", "san": "SAN", "rcode": "response code", "doh": "DoH",
    "doq": "DoQ", "dot": "DoT", "aia": "AIA", "ca": "CA", "ad": "AD flag", "txt": "TXT",
    "opt": "OPT", "qname": "query name", "sni": "SNI", "rst": "RST", "len": "length",
}  # fmt: skip
"""Words of a key spelled out: protocol names in capitals, abbreviations written out."""

UNITS = (
    ("_ms", "ms"),
    ("_s", "s"),
    ("_len", "octets"),
    ("_length", "octets"),
    ("_bits", "bits"),
    ("_days", "days"),
    ("days_left", "days"),
)
"""Key suffixes that carry a unit, and the unit shown after the number."""


def label(key: str) -> str:
    """The phrase for an evidence key: known, or spelled out word by word without its
    unit suffix (the unit goes with the value)."""
    if key in LABELS:
        return LABELS[key]
    words = key.split("_")
    if len(words) > 1 and words[-1] in ("ms", "s"):
        words = words[:-1]
    return " ".join(WORDS.get(w, w) for w in words if w) or "value"


def unit_of(key: str) -> str | None:
    for suffix, unit in UNITS:
        if key.endswith(suffix):
            return unit
    return None


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))  # ports, TTLs, counts: no thousands separator
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) >= 0.01 else f"{value:.3g}"


def value_text(key: str, value: object, depth: int = 0) -> str:
    """A value as a reader sees it: yes/no, numbers with their unit, lists joined."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        number = num(value)
        if number is None:
            return "—"
        unit = unit_of(key)
        if unit == "ms" and abs(number) >= 1000:
            return f"{_number(number / 1000)} s"
        return f"{_number(number)} {unit}" if unit else _number(number)
    if isinstance(value, str):
        return value
    if value is None:
        return "—"
    if depth >= MAX_DEPTH:
        return "…"
    if isinstance(value, list | tuple):
        if not value:
            return "none"
        shown = [value_text(key, v, depth + 1) for v in value[:MAX_ITEMS]]
        more = len(value) - len(shown)
        return ", ".join(shown) + (f" … ({more} more)" if more > 0 else "")
    if isinstance(value, dict):
        if not value:
            return "none"
        items = list(value.items())[:MAX_ITEMS]
        shown = [f"{label(str(k))}: {value_text(str(k), v, depth + 1)}" for k, v in items]
        more = len(value) - len(shown)
        return "; ".join(shown) + (f" … ({more} more)" if more > 0 else "")
    return type(value).__name__


def evidence_rows(evidence: object) -> list[tuple[str, str]]:
    """(label, value) rows for a check's evidence; a nested object (``udp53``) gives one
    row per field, labelled "UDP 53: response code"."""
    if not isinstance(evidence, dict):
        return []
    rows: list[tuple[str, str]] = []
    for key, value in evidence.items():
        if value is None or len(rows) >= MAX_ROWS:
            continue
        name = label(str(key))
        flat = (
            all(not isinstance(v, dict) for v in value.values())
            if isinstance(value, dict)
            else False
        )
        if isinstance(value, dict) and value and flat:
            for sub, item in list(value.items())[:MAX_ITEMS]:
                if item is not None:
                    rows.append((f"{name}: {label(str(sub))}", value_text(str(sub), item)))
            continue
        rows.append((name, value_text(str(key), value)))
    return rows[:MAX_ROWS]


def probe_setting_rows(settings: Sequence[tuple[object, object]]) -> list[tuple[str, str]]:
    """The probe settings a report ran with, labelled with their options."""
    rows = []
    for key, value in settings:
        name = str(key)
        if name == "max_idle_wait_s" and num(value) == 0:
            rows.append((SETTINGS[name], "none: the idle close was not measured"))
            continue
        if name == "ca_file" and value is None:
            rows.append((SETTINGS[name], "the system store"))
            continue
        rows.append((SETTINGS.get(name) or label(name), value_text(name, value)))
    return rows


def evidence_line(evidence: object) -> str:
    """The rows on one line, for the text report."""
    return "; ".join(f"{name}: {value}" for name, value in evidence_rows(evidence))
