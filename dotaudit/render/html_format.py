"""Formatting for the HTML report: untrusted JSON values in, plain display strings out.

A report may come from ``dotaudit report`` reading a hand-edited file, so nothing here
assumes a type: every accessor coerces, and containers are capped when shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dotaudit.model.coerce import as_dict, as_int, as_list, as_str, num

MAX_ROWS = 50
MAX_TOP = 20
MAX_LIST_ITEMS = 20

_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def words(n: int) -> str:
    return _WORDS[n] if 0 <= n < len(_WORDS) else f"{n:,}"


def plural(n: int, one: str, many: str | None = None) -> str:
    return one if n == 1 else (many or one + "s")


def fmt_ts(value: object) -> str:
    ts = num(value)
    if ts is None:
        return "—"
    try:
        moment = datetime.fromtimestamp(ts, UTC)
    except (OverflowError, OSError, ValueError):
        return f"{ts:.6f}"
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def fmt_span(seconds: object) -> str:
    value = num(seconds)
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def fmt_fraction(value: object) -> str:
    number = num(value)
    return "—" if number is None else f"{number:.0%}"


def text_of(value: object, depth: int = 0) -> str:
    """Plain text for an evidence value: lists and dicts capped, nesting flattened."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int | str):
        return str(value)
    if depth > 2:
        return "…"
    if isinstance(value, list | tuple):
        if not value:
            return "none"
        shown = [text_of(v, depth + 1) for v in value[:MAX_LIST_ITEMS]]
        more = len(value) - len(shown)
        return ", ".join(shown) + (f" … ({more} more)" if more > 0 else "")
    if isinstance(value, dict):
        if not value:
            return "none"
        items = list(value.items())[:MAX_LIST_ITEMS]
        shown = [f"{text_of(k, depth + 1)}: {text_of(v, depth + 1)}" for k, v in items]
        more = len(value) - len(shown)
        return "; ".join(shown) + (f" … ({more} more)" if more > 0 else "")
    return str(type(value).__name__)


def cell(key: str, value: object) -> str:
    if key in ("first_ts", "last_ts", "ts", "start", "end", "attempt_start", "attempt_end"):
        return fmt_ts(value)
    if key.endswith("_s") and num(value) is not None:
        return f"{num(value):.3f} s"
    return text_of(value)


_RDN_SPLIT = re.compile(r"(?<!\\),")


def readable_dn(value: object) -> str:
    """An RFC 4514 name with a space after each separating comma, so that it can wrap."""
    text = as_str(value)
    return ", ".join(_RDN_SPLIT.split(text)) if text else "—"


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    total: int

    @property
    def more(self) -> int:
        return max(self.total - len(self.rows), 0)


def generic_table(
    rows: list[dict[str, Any]],
    preferred: Iterable[str],
    skip: Iterable[str] = ("file", "frames"),
    *,
    label: Callable[[str], str] = lambda key: key.replace("_", " "),
    value: Callable[[str, object], str] = cell,
) -> Table:
    """A table for a section whose rows this renderer has no special layout for; ``label``
    names a column and ``value`` formats a cell (``render/labels.py`` gives words)."""
    preferred = list(preferred)
    skipped = set(skip)
    seen: list[str] = []
    for row in rows[:200]:
        for key in row:
            if isinstance(key, str) and key not in seen and key not in skipped:
                seen.append(key)
    columns = [k for k in preferred if k in seen]
    columns += [k for k in seen if k not in columns][: max(0, 9 - len(columns))]
    shown = [[value(k, row.get(k)) for k in columns] for row in rows[:MAX_ROWS]]
    return Table([label(c) for c in columns], shown, len(rows))


REDACTED_EVIDENCE_WORDS = {
    "frames": "frames rewritten",
    "dns_messages_masked": "DNS messages with names masked",
    "dns_labels_hidden": "DNS labels replaced by '*'",
    "tls_payloads_zeroed": "TLS record bodies zeroed",
    "other_payloads_zeroed": "other payloads zeroed",
    "unparsed_zeroed": "frames zeroed whole (not parsed)",
    "method": "how",
}
"""The evidence rewriter's counts (``capture/redact_frames.py``) in words."""


def redaction_view(block: object) -> dict[str, Any] | None:
    """The banner of a redacted report, from its ``redaction`` block (which may be anything)."""
    if block is None:
        return None
    data = as_dict(block)
    addresses = as_dict(data.get("addresses"))
    names = as_dict(data.get("names"))
    psl = as_dict(names.get("public_suffix_list"))
    evidence = as_dict(data.get("evidence"))
    resolvers = as_str(addresses.get("resolvers")) or "unknown"
    return {
        "fingerprint": as_str(data.get("key_fingerprint")) or "unknown",
        "names": as_str(names.get("level")) or "unknown",
        "psl": as_str(psl.get("snapshot")),
        "resolvers": resolvers,
        "pseudonymised": as_int(addresses.get("pseudonymised")),
        "masked": as_int(names.get("masked")),
        "kept": [text_of(item) for item in as_list(data.get("kept"))[:MAX_LIST_ITEMS]],
        "evidence": [
            (REDACTED_EVIDENCE_WORDS.get(str(k), str(k).replace("_", " ")), text_of(v))
            for k, v in list(evidence.items())[:MAX_TOP]
        ],
    }
