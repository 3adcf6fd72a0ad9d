"""Inline SVG charts for the HTML report, drawn server-side from numbers.

Text from a report reaches a chart only as a lane label (a client address, cut to
``MAX_LANE_LABEL`` characters); labels are otherwise formatted numbers or fixed strings,
and every value goes through ``markupsafe.escape``, so that nothing can inject markup.
Each chart has a ``<title>`` and a ``<desc>``; the HTML beside it carries the full text
equivalent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

SEVERITY_ORDER = ("high", "medium", "low", "info")
SEVERITY_MARK = {"high": "▲", "medium": "◆", "low": "▼", "info": "●"}
"""A shape per severity: colour is never the only signal."""


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


class _Svg:
    """Collects SVG elements; attribute values and text are escaped on the way in."""

    def __init__(self, width: float, height: float, title: str, desc: str) -> None:
        self.width = width
        self.height = height
        self.parts: list[str] = [f"<title>{escape(title)}</title>", f"<desc>{escape(desc)}</desc>"]

    def element(self, tag: str, text: str | None = None, **attrs: float | str) -> None:
        rendered = " ".join(
            f'{escape(name.rstrip("_").replace("_", "-"))}="'
            f'{escape(_num(value) if isinstance(value, float | int) else value)}"'
            for name, value in attrs.items()
        )
        if text is None:
            self.parts.append(f"<{tag} {rendered}/>")
        else:
            self.parts.append(f"<{tag} {rendered}>{escape(text)}</{tag}>")

    def markup(self, css_class: str) -> Markup:
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="{escape(css_class)}" role="img" '
            f'viewBox="0 0 {_num(self.width)} {_num(self.height)}" '
            f'preserveAspectRatio="xMinYMin meet">'
        )
        return Markup(head + "".join(self.parts) + "</svg>")  # built from numbers and escaped text


# -- findings by severity ------------------------------------------------------------


def severity_bar(counts: dict[str, int], what: str = "findings") -> Markup:
    """Horizontal bars, one per severity, each labelled with its name, shape and count of
    ``what`` (findings, or machines counted at their most severe finding)."""
    rows = [(label, max(int(counts.get(label, 0)), 0)) for label in SEVERITY_ORDER]
    top = max((n for _, n in rows), default=0) or 1
    width, label_w, row_h = 560.0, 110.0, 26.0
    desc = ", ".join(f"{n} {label}" for label, n in rows)
    title = "Findings by severity" if what == "findings" else f"{what.capitalize()} by severity"
    svg = _Svg(width, row_h * len(rows) + 6, title, desc)
    bar_room = width - label_w - 60
    for i, (label, n) in enumerate(rows):
        y = 4 + i * row_h
        svg.element(
            "text", f"{SEVERITY_MARK[label]} {label}", x=4, y=y + 16, class_="lbl sev-" + label
        )
        bar = bar_room * n / top
        if n:
            svg.element(
                "rect",
                x=label_w,
                y=y + 3,
                width=max(bar, 2.0),
                height=row_h - 8,
                rx=3,
                class_="bar sev-" + label,
            )
        svg.element("text", str(n), x=label_w + max(bar, 2.0) + 6, y=y + 16, class_="num")
    return svg.markup("chart chart-severity")


# -- DoT record-size histogram ---------------------------------------------------------


@dataclass
class SizeHistogram:
    """Estimated DNS message lengths of one direction, binned for a 128/468 grid."""

    block: int
    sizes: list[int] = field(default_factory=list)

    def on_grid(self) -> int:
        return sum(1 for s in self.sizes if s > 0 and s % self.block == 0)


def bin_width_for(block: int) -> int:
    """The widest bin (at most a twelfth of the block) that divides the block evenly."""
    return next((w for w in range(max(block // 12, 1), 0, -1) if block % w == 0), 1)


def size_histogram(hist: SizeHistogram, direction: str) -> Markup:
    """Bars of message lengths with a vertical line at every multiple of ``hist.block``.

    Padded traffic stacks up on the lines; unpadded traffic spreads between them.
    """
    block = max(hist.block, 1)
    bin_width = bin_width_for(block)
    sizes = [s for s in hist.sizes if s >= 0]
    span_blocks = max(2, min(6, math.ceil((max(sizes, default=0) + 1) / block)))
    x_max = span_blocks * block
    bins: dict[int, int] = {}
    overflow = 0
    for size in sizes:
        if size >= x_max:
            overflow += 1
            continue
        bins[size // bin_width] = bins.get(size // bin_width, 0) + 1
    width, height, left, bottom, top_pad = 560.0, 190.0, 40.0, 34.0, 14.0
    plot_w, plot_h = width - left - 56, height - bottom - top_pad
    peak = max([*bins.values(), overflow, 1])
    on_grid = hist.on_grid()
    desc = (
        f"{len(sizes)} {direction} records; {on_grid} exactly on a multiple of {block} octets"
        + (f"; {overflow} longer than {x_max} octets" if overflow else "")
    )
    svg = _Svg(width, height, f"DoT {direction}: DNS message lengths", desc)
    base_y = top_pad + plot_h
    svg.element("line", x1=left, y1=base_y, x2=left + plot_w, y2=base_y, class_="axis")
    for k in range(span_blocks + 1):
        x = left + plot_w * (k * block) / x_max
        svg.element("line", x1=x, y1=top_pad, x2=x, y2=base_y, class_="grid")
        svg.element("text", str(k * block), x=x, y=base_y + 14, class_="tick", text_anchor="middle")
    bar_w = max(plot_w * bin_width / x_max - 0.6, 1.2)
    for index, count in sorted(bins.items()):
        start = index * bin_width
        x = left + plot_w * start / x_max
        h = plot_h * count / peak
        grid_bin = start > 0 and start % block == 0
        svg.element(
            "rect",
            x=x,
            y=base_y - h,
            width=bar_w,
            height=max(h, 1.0),
            class_="hbar on-grid" if grid_bin else "hbar off-grid",
        )
    if overflow:
        x = left + plot_w + 10
        h = plot_h * overflow / peak
        svg.element("rect", x=x, y=base_y - h, width=10, height=max(h, 1.0), class_="hbar over")
        svg.element(
            "text", f">{x_max}", x=x + 5, y=base_y + 14, class_="tick", text_anchor="middle"
        )
    svg.element(
        "text",
        f"octets (grid: {block})",
        x=left + plot_w,
        y=height - 4,
        class_="tick",
        text_anchor="end",
    )
    svg.element("text", f"{peak}", x=left - 4, y=top_pad + 8, class_="tick", text_anchor="end")
    svg.element("line", x1=left - 2, y1=top_pad, x2=left + 2, y2=top_pad, class_="axis")
    return svg.markup("chart chart-hist")


# -- fallback timeline -----------------------------------------------------------------


@dataclass
class Attempt:
    start: float
    end: float
    code: str
    """One letter: D dropped, R reset, I ICMP, A alert, H handshake incomplete, ✓ ok."""
    ok: bool


@dataclass
class Lane:
    number: int
    label: str = ""
    """The lane's client address (escaped on the way in, like every text here)."""
    attempts: list[Attempt] = field(default_factory=list)
    plaintext: list[tuple[float, float]] = field(default_factory=list)
    fallbacks: list[float] = field(default_factory=list)
    """Times of the first plaintext query after a failed attempt."""


def _ticks(span: float) -> list[float]:
    if span <= 0:
        return [0.0]
    raw = span / 6
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(span / step) + 1)]


MAX_LANE_LABEL = 39
"""Characters of a lane label shown (a full IPv6 address); longer ones end in "…"."""


def fallback_timeline(lanes: Sequence[Lane], origin: float, span: float) -> Markup:
    """One lane per client address: DoT attempts, the failure mode and the plaintext that
    followed. Marks sit inside their lane: the failure letter above the attempt bar, the
    plaintext bar and the fallback marker below it."""
    span = max(span, 1e-3)
    names = [
        (lane.label or f"client {lane.number}")[:MAX_LANE_LABEL]
        + ("…" if len(lane.label) > MAX_LANE_LABEL else "")
        for lane in lanes
    ]
    longest = max((len(n) for n in names), default=8)
    width, right, lane_h, head, foot = 760.0, 24.0, 52.0, 10.0, 26.0
    left = min(max(longest * 7.0 + 14.0, 70.0), 290.0)
    plot_w = width - left - right
    height = head + lane_h * len(lanes) + foot
    attempts = sum(len(lane.attempts) for lane in lanes)
    desc = (
        f"{len(lanes)} client lanes, {attempts} DoT attempts over {_num(span)} s; "
        "the table below lists every event"
    )
    svg = _Svg(width, height, "Fallback timeline", desc)

    def x_of(ts: float) -> float:
        return left + plot_w * min(max((ts - origin) / span, 0.0), 1.0)

    def label_at(x: float) -> dict[str, float | str]:
        # A mark near the right edge is written leftwards, so that it stays in the plot.
        return {"x": x, "text_anchor": "end"} if x > left + plot_w - 24 else {"x": x}

    for i, (lane, name) in enumerate(zip(lanes, names, strict=True)):
        y = head + i * lane_h
        svg.element("rect", x=left, y=y + 3, width=plot_w, height=lane_h - 6, class_="lane")
        svg.element("text", name, x=4, y=y + lane_h / 2 + 4, class_="lbl addr")
        mid = y + lane_h / 2
        for start, end in lane.plaintext:
            x1, x2 = x_of(start), x_of(end)
            svg.element("rect", x=x1, y=mid + 4, width=max(x2 - x1, 3.0), height=7, class_="plain")
        for attempt in lane.attempts:
            x1, x2 = x_of(attempt.start), x_of(attempt.end)
            css, mark = ("ok", "✓") if attempt.ok else ("fail", "✗" + attempt.code)
            svg.element(
                "rect", x=x1, y=mid - 8, width=max(x2 - x1, 3.0 if attempt.ok else 2.0),
                height=7, class_=css,
            )  # fmt: skip
            svg.element("text", mark, y=mid - 11, class_=f"mark {css}-t", **label_at(x1))
        for ts in lane.fallbacks:
            x = x_of(ts)
            svg.element("path", d=f"M{_num(x - 9)} {_num(mid + 2)} l8 5.5 l-8 5.5 z", class_="fb")
    axis_y = head + lane_h * len(lanes) + 4
    svg.element("line", x1=left, y1=axis_y, x2=left + plot_w, y2=axis_y, class_="axis")
    for t in _ticks(span):
        x = x_of(origin + t)
        svg.element("line", x1=x, y1=axis_y, x2=x, y2=axis_y + 4, class_="axis")
        svg.element(
            "text", f"+{_num(t)} s", x=x, y=axis_y + 16, class_="tick", text_anchor="middle"
        )
    return svg.markup("chart chart-timeline")


def counts_line(values: Iterable[int]) -> str:
    """``12×128, 3×256``-style summary used by text equivalents."""
    counts: dict[int, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:12]
    return ", ".join(f"{n}×{size}" for size, n in top)
