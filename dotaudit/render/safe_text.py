"""Turning attacker-controlled text into HTML that shows what it is and does nothing else.

Names, SNI values and certificate subjects come from the network. HTML escaping stops
markup; this module also stops *visual* spoofing: bidi overrides, zero-width and control
characters (and lone surrogates from a hand-edited JSON file) become visible markers such
as ``[U+202E RLO]``, text that is not plain ASCII is bidi-isolated, and very long values
are clipped with a count of what was cut.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

MAX_TEXT = 300
"""Characters shown of one value; the JSON report keeps all of them."""
_LONG_TOKEN = re.compile(r"\S{49}")
"""A run this long may break anywhere; shorter words (addresses, dates) stay whole."""

_NAMES = {
    0x00: "NUL",
    0x09: "TAB",
    0x0A: "LF",
    0x0D: "CR",
    0x1B: "ESC",
    0x7F: "DEL",
    0xA0: "NBSP",
    0xAD: "SHY",
    0x200B: "ZWSP",
    0x200C: "ZWNJ",
    0x200D: "ZWJ",
    0x200E: "LRM",
    0x200F: "RLM",
    0x202A: "LRE",
    0x202B: "RLE",
    0x202C: "PDF",
    0x202D: "LRO",
    0x202E: "RLO",
    0x2066: "LRI",
    0x2067: "RLI",
    0x2068: "FSI",
    0x2069: "PDI",
    0x061C: "ALM",
    0xFEFF: "BOM",
    0x2028: "LS",
    0x2029: "PS",
}


def _marker(ch: str) -> str:
    code = ord(ch)
    name = _NAMES.get(code)
    label = f"U+{code:04X}" + (f" {name}" if name else "")
    return f'<span class="cc">[{label}]</span>'


def neutral(value: object, limit: int = MAX_TEXT) -> Markup:
    """HTML for ``value`` as inert, visible text (see the module docstring)."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("")
    if isinstance(value, bool):
        return Markup("yes" if value else "no")
    text = value if isinstance(value, str) else str(value)
    cut = len(text) - limit if len(text) > limit else 0
    if cut:
        text = text[:limit]
    if text.isascii() and text.isprintable():
        body = str(escape(text))
    else:
        out: list[str] = []
        for ch in text:
            if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF:
                out.append(str(escape(ch)))
            else:
                out.append(_marker(ch))
        body = "<bdi>" + "".join(out) + "</bdi>"
    if _LONG_TOKEN.search(text):
        body = f'<span class="brk">{body}</span>'
    if cut:
        body += f'<span class="cut">… [{cut} more characters]</span>'
    return Markup(body)


def finalize(value: object) -> object:
    """jinja2 ``finalize``: every ``{{ … }}`` output that is not already Markup is neutralised."""
    if isinstance(value, Markup):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return neutral(value)
