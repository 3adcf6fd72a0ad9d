"""The HTML report without a browser: escaping, self-containment, caps, charts, probe matrix.

Oracles: the HTML5 parser of the standard library (``html.parser``) for what elements and
attributes the document contains; the report model itself for the numbers shown.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from dotaudit.model.findings import Confidence, Finding, Severity, make_finding
from dotaudit.model.report import AuditReport
from dotaudit.render import html as html_module
from dotaudit.render import html_sections
from dotaudit.render.base import OutputFormat, render
from dotaudit.render.html import environment, render_html
from dotaudit.render.safe_text import neutral
from dotaudit.render.svg import SizeHistogram, bin_width_for, size_histogram
from tests import pcapgen
from tests.conftest import ROOT
from tests.factories import capped_dot_report

RENDER_DIR = Path(html_module.__file__).parent
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "main", "nav", "section",
    "footer", "div", "span", "h1", "h2", "h3", "h4", "p", "a", "b", "code", "table", "thead",
    "tbody", "tr", "th", "td", "dl", "dt", "dd", "ul", "li", "figure", "figcaption", "article",
    "br", "bdi", "svg", "desc", "rect", "line", "text", "path", "ol", "details", "summary",
    "caption",
}  # fmt: skip
HOSTILE = "<script>document.title='x'</script>\"><img src=x onerror=alert(1)>"


class Doc(HTMLParser):
    """Every start tag with its attributes, and the visible text."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._skip = 0
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "style":
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)

    @property
    def visible(self) -> str:
        return "".join(self.text)


def hostile_report() -> AuditReport:
    """Attacker text in every field the renderer shows, as a hand-edited JSON could hold."""
    bad = HOSTILE + "\u202e\x00\x1b[31m\ud800\u200b" + "Z" * 1000
    report = AuditReport(kind="analyze", generated_at=bad)
    report.inputs = [{"path": bad, "sha256": bad, "packets": 3, "warnings": [bad]}]
    report.policy = {bad: bad}
    report.anomalies = {bad: 2}
    report.findings = [
        Finding(
            id=bad,
            severity=Severity.HIGH,
            confidence=Confidence.HIGH,
            title=bad,
            dedup_key=bad,
            client=bad,
            server=bad,
            evidence={bad: [bad, {bad: bad}]},
            frames=(1, 2),
            remediation=bad,
            file=bad,
        )
    ]
    row = {"client": bad, "server": bad, "sni": bad, "qnames": [bad], "queries": 1}
    report.sections = {
        "plaintext_dns": [dict(row, transport=bad, known_resolver=bad)],
        "dot_sessions": [
            dict(
                row,
                version=bad,
                ja4=bad,
                outcome=bad,
                start=1.0,
                end=2.0,
                padding={"verdict": bad, "overhead": [17, 17], "client_sizes": [bad, 147]},
                certificate={"subject": bad},
            )
        ],
        "fallback_events": [
            dict(row, failure=bad, failure_text=bad, attempt_start=1.0, first_plaintext_ts=2.0)
        ],
        "sni_inventory": [row, {bad: bad}],
        "doh_doq": [dict(row, protocol=bad)],
        "local_names": [row],
        "targets": [
            {
                "target": bad,
                "address": bad,
                "verdict": {"strict": bad, "opportunistic": bad, "reasons": [bad]},
                "checks": [{"id": bad, "status": bad, "evidence": {bad: bad}, "rfc": bad}],
            }
        ],
    }
    return report


def test_templates_never_mark_report_data_safe() -> None:
    templates = sorted((RENDER_DIR / "templates").glob("*.j2"))
    assert templates, "templates missing"
    for path in templates:
        text = path.read_text(encoding="utf-8")
        assert "|safe" not in text.replace(" ", ""), path
        assert "Markup(" not in text, path
        assert "autoescape" not in text, path  # no {% autoescape false %} block
    # In Python, Markup is built only by the SVG writer and the neutraliser.
    makers: set[str] = set()
    for name in ("html.py", "html_format.py", "html_sections.py", "svg.py", "safe_text.py"):
        tree = ast.parse((RENDER_DIR / name).read_text(encoding="utf-8"))
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef):
                continue
            for node in ast.walk(func):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "Markup"
                ):
                    makers.add(f"{name}:{func.name}")
    assert makers == {"svg.py:markup", "safe_text.py:neutral"}


def test_every_template_autoescapes() -> None:
    env = environment()
    assert env.autoescape("report.html.j2") is True  # type: ignore[operator]
    assert env.autoescape(None) is True  # type: ignore[operator]
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"


def test_neutral_shows_invisible_characters_and_clips() -> None:
    out = str(neutral("a\u202eb\x00c\ud800"))
    assert "\u202e" not in out and "\x00" not in out and "\ud800" not in out
    assert "[U+202E RLO]" in out and "[U+0000 NUL]" in out and "[U+D800]" in out
    assert out.startswith("<bdi>")
    clipped = str(neutral("y" * 1000))
    assert "y" * 300 in clipped and "y" * 301 not in clipped
    assert "[700 more characters]" in clipped
    assert str(neutral("<a href=x>")) == "&lt;a href=x&gt;"


def test_hostile_report_renders_inert() -> None:
    body = render_html(hostile_report())
    body.encode("utf-8")  # strict: no lone surrogate survived
    doc = Doc(body)
    tags = {tag for tag, _ in doc.tags}
    assert tags <= ALLOWED_TAGS, tags - ALLOWED_TAGS
    for tag, attrs in doc.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in ("href", "src"):
                assert value is not None and value.startswith("#"), (tag, value)
    assert "\u202e" not in body and "\x00" not in body and "\x1b" not in body
    visible = doc.visible
    assert "<script>document.title='x'</script>" in visible
    assert '"><img src=x onerror=alert(1)>' in visible
    assert "[U+202E RLO]" in visible and "[U+001B ESC]" in visible
    assert "more characters]" in visible


def test_document_is_self_contained_with_a_script_forbidding_csp() -> None:
    body = render_html(AuditReport(kind="analyze", generated_at="2024-01-01T00:00:00Z"))
    metas = [a for t, a in Doc(body).tags if t == "meta"]
    assert {"http-equiv": "Content-Security-Policy", "content": CSP} in metas
    assert "<script" not in body.lower()
    assert "@media print" in body and "max-width: 760px" in body
    urls = re.findall(r"(?:https?:)?//[^\s\"'<>)]+", body)
    assert set(urls) == {"http://www.w3.org/2000/svg"}  # the SVG namespace, never fetched


def test_html_format_is_wired_into_render() -> None:
    body = render(AuditReport(kind="analyze", generated_at="t"), OutputFormat.HTML)
    assert body.startswith("<!DOCTYPE html>")


def _big_report(plain: int, sessions: int, findings: int) -> AuditReport:
    report = AuditReport(kind="analyze", generated_at="2024-01-01T00:00:00Z")
    report.inputs = [{"path": "bench.pcap", "sha256": "0" * 64, "packets": 1_000_000}]
    report.sections["plaintext_dns"] = [
        {
            "client": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
            "server": f"192.0.2.{i % 200}",
            "transport": "udp",
            "queries": 3,
            "qnames": [f"name{i % 5000}.example.com", f"host{i}.corp.example"],
            "first_ts": 1000.0 + i,
            "last_ts": 1001.0 + i,
        }
        for i in range(plain)
    ]
    report.sections["dot_sessions"] = [
        {
            "client": f"10.0.{i >> 8 & 255}.{i & 255}",
            "server": "9.9.9.9",
            "dport": 853,
            "sni": "dns.quad9.net",
            "version": "TLSv1.3",
            "ja4": "t13d1517h2_8daaf6152771_b1ff8ab2d16f",
            "outcome": "established",
            "start": 2000.0 + i,
            "end": 2010.0 + i,
            "padding": {
                "verdict": "padded",
                "overhead": [17, 17],
                "client_sizes": [147] * 20,
                "server_sizes": [487] * 20,
            },
        }
        for i in range(sessions)
    ]
    report.findings = [
        make_finding(
            "DA-LEAK-001",
            dedup_key=str(i),
            client=f"10.0.0.{i % 250}",
            server="192.0.2.1",
            evidence={"qnames": [f"n{j}.example" for j in range(20)], "queries": 10},
            frames=list(range(50)),
        )
        for i in range(findings)
    ]
    return report


def test_benchmark_sized_report_stays_under_5_mb() -> None:
    report = _big_report(plain=50_000, sessions=20_000, findings=5_000)
    started = time.perf_counter()
    body = render_html(report)
    elapsed = time.perf_counter() - started
    size = len(body.encode("utf-8"))
    print(f"50k plaintext rows, 20k sessions, 5k findings: {size / 1e6:.2f} MB in {elapsed:.2f} s")
    assert size < 5_000_000
    assert elapsed < 30
    visible = Doc(body).visible
    assert "19,950 more rows of 20,000 not shown" in visible
    assert "more findings not shown" in visible
    assert "150,000 DNS queries in plaintext" in visible


def test_plaintext_tables_aggregate_clients_resolvers_and_names() -> None:
    report = _big_report(plain=30, sessions=0, findings=0)
    report.sections["plaintext_dns"].append(
        {"client": "127.0.0.1", "server": "127.0.0.53", "queries": 99, "local_stub": True}
    )
    view = html_module.build_view(report)
    resolvers = view["plaintext"]["resolvers"]
    assert resolvers.total == 30 and resolvers.rows[0][1] == "3"
    assert view["plaintext"]["local_queries"] == 99
    names = {row[0]: row for row in view["plaintext"]["names"].rows}
    assert names["name0.example.com"][1] == "1"
    assert "127.0.0.1" not in {row[0] for row in view["plaintext"]["clients"].rows}


def test_size_histogram_puts_padded_records_on_the_grid() -> None:
    assert bin_width_for(128) == 8 and bin_width_for(468) == 39
    padded = SizeHistogram(block=128, sizes=[128] * 10 + [256] * 2)
    assert padded.on_grid() == 12
    svg = str(size_histogram(padded, "queries"))
    assert svg.count('class="hbar on-grid"') == 2 and "off-grid" not in svg
    unpadded = SizeHistogram(block=128, sizes=[33, 47, 61, 90])
    assert unpadded.on_grid() == 0
    assert str(size_histogram(unpadded, "queries")).count("off-grid") == 4


def test_findings_have_stable_anchors_and_rfc_references() -> None:
    report = _big_report(plain=0, sessions=0, findings=3)
    first = html_module.build_view(report)
    report.findings.reverse()
    report.findings.append(make_finding("DA-DOT-003", dedup_key="x"))
    second = html_module.build_view(report)

    def anchors(view: dict[str, Any]) -> dict[str, str]:
        return {
            f["anchor"]: f["id"] for group in view["findings"]["groups"] for f in group["cards"]
        }

    assert set(anchors(first)) < set(anchors(second))
    card = first["findings"]["groups"][0]["cards"][0]
    assert card["refs"] == ["RFC 7858", "RFC 8484", "RFC 8310 §5"]
    body = render_html(report)
    for anchor in anchors(second):
        assert f'id="{anchor}"' in body and f'href="#{anchor}"' in body


def probe_report() -> AuditReport:
    def check(cid: str, status: str, **extra: Any) -> dict[str, Any]:
        return {"id": cid, "status": status, "level": "MUST", "rfc": "RFC 7858 §3.1", **extra}

    report = AuditReport(kind="probe", generated_at="2024-01-01T00:00:00Z")
    report.sections["targets"] = [
        {
            "target": "dns.quad9.net@9.9.9.9",
            "address": "9.9.9.9",
            "port": 853,
            "name": "dns.quad9.net",
            "verdict": {"strict": "accept", "opportunistic": "encrypted", "reasons": []},
            "checks": [
                check("cert.name", "pass"),
                check("reach.853", "pass", evidence={"class": "open"}),
                check("custom.extra", "skip"),
            ],
        },
        {
            "target": "192.0.2.1",
            "address": "192.0.2.1",
            "port": 853,
            "name": None,
            "verdict": {
                "strict": "refuse",
                "opportunistic": "plaintext-fallback",
                "reasons": ["853 filtered while 53 answers"],
            },
            "checks": [
                check("reach.853", "fail", evidence={"class": "filtered"}),
                check("cert.name", "error", error_reason="timeout after 5 s"),
            ],
        },
    ]
    return report


def test_probe_matrix_groups_checks_and_labels_every_status() -> None:
    view = html_module.build_view(probe_report())
    probe = view["probe"]
    assert [(m["title"], m["columns"]) for m in probe["matrices"]] == [
        ("Reachability", ["reach.853"]),
        ("TLS and authentication", ["cert.name"]),
        ("Other checks", ["custom.extra"]),
    ]
    second = [m["rows"][1]["cells"][0] for m in probe["matrices"]]
    assert [c["text"] if c else None for c in second] == ["fail", "error", None]
    assert [c["symbol"] for c in second if c] == ["✗", "⚠"]
    assert view["summary"] == [
        "1 of 2 resolvers would be accepted by a strict-mode client (RFC 8310); at one an "
        "opportunistic client would fall back to plaintext."
    ]
    visible = Doc(render_html(probe_report())).visible
    assert "timeout after 5 s" in visible and "853 filtered while 53 answers" in visible
    assert "✗ fail" in visible and "✓ pass" in visible and "– skipped" in visible
    assert "○ not applicable: nothing to test" in visible  # the legend


def test_an_untested_verdict_is_not_counted_as_refused() -> None:
    report = probe_report()
    report.sections["targets"][1]["verdict"]["strict"] = "not-tested"
    report.sections["targets"][1]["verdict"]["opportunistic"] = "not-tested"
    view = html_module.build_view(report)
    assert view["summary"] == [
        "1 of 2 resolvers would be accepted by a strict-mode client (RFC 8310); for one that "
        "was not tested."
    ]
    assert [v["strict"] for v in view["probe"]["verdicts"]] == ["accepts", "not tested"]


def test_a_wide_unknown_group_is_split_into_narrow_tables() -> None:
    report = probe_report()
    report.sections["targets"][0]["checks"] += [
        {"id": f"custom.{n}", "status": "pass"} for n in range(14)
    ]
    widths = [len(m["columns"]) for m in html_module.build_view(report)["probe"]["matrices"]]
    assert max(widths) == html_sections.MAX_GROUP_COLUMNS and sum(widths) == 2 + 15


def test_probe_evidence_is_labelled_rows_with_units() -> None:
    """Before, evidence was one string: ``connect_ms: 0.11; errno: —; error_kind: refused``."""
    report = probe_report()
    report.sections["targets"][1]["checks"][0]["evidence"] = {
        "class": "refused", "connect_ms": 0.113, "errno": None, "error_kind": "refused",
        "udp53": {"answered": False, "query_ms": 1523.0}, "advertised_ms": 120000,
        "some_new_thing_s": 2,
    }  # fmt: skip
    body = render_html(report)
    detail = body.split('id="target-2"', 1)[1].split("</article>", 1)[0]
    rows = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", detail.split('<dl class="ev">', 1)[1])
    assert rows == [
        ("result", "refused"),
        ("TCP connect time", "0.11 ms"),
        ("what went wrong", "refused"),
        ("UDP 53: answered", "no"),
        ("UDP 53: query time", "1.52 s"),
        ("advertised idle timeout", "120 s"),
        ("some new thing", "2 s"),
    ]
    assert "errno" not in detail and "—" not in detail.split('<dl class="ev">', 1)[1]


def test_no_raw_key_labels_in_the_probe_section() -> None:
    """Walk the probe section's labels (table heads, evidence terms, captions, legend):
    none is a snake_case key."""
    report = probe_report()
    report.probe_config = {"mode": "strict", "timeout_s": 3.0, "max_idle_wait_s": 0.0}
    for target in report.sections["targets"]:
        for check in target["checks"]:
            check["evidence"] = {"connect_ms": 1, "error_kind": "x", "reach_853": "open",
                                 "udp53": {"query_ms": 2}, "measured_idle_close_ms": 3}  # fmt: skip
    body = render_html(report)
    section = body.split('<section id="probe">', 1)[1].split("</section>", 1)[0]
    labels = re.findall(r"<(?:dt|th|caption)[^>]*>(.*?)</(?:dt|th|caption)>", section)
    assert labels
    snake = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b")
    assert [label for label in labels if snake.search(label)] == []
    settings = re.sub(r"<[^>]+>", " ", body.split("Probe settings", 1)[1].split("</dl>", 1)[0])
    assert not snake.search(settings) and " s " not in settings.replace("3 s ", ""), settings
    assert "time per network step (--timeout)  3 s" in settings
    assert "the idle close was not measured" in settings


def test_fallback_capture_gets_timeline_and_plain_summary(tmp_path: Path) -> None:
    capture = pcapgen.fallback_capture(tmp_path / "fb.pcap", "drop")
    out = tmp_path / "out" / "report.html"
    out.parent.mkdir()
    evidence = tmp_path / "evidence"
    run = subprocess.run(
        [
            *(sys.executable, "-m", "dotaudit", "analyze", str(capture), "-o", str(out)),
            *("--evidence", str(evidence), "-q", "--fail-on", "none"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    body = out.read_text(encoding="utf-8")
    doc = Doc(body)
    assert (
        "1 of 1 machine sent 1 DNS query in plaintext; one fell back from DoT to plaintext "
        "after port 853 was dropped." in doc.visible
    )
    assert "chart-timeline" in body and "✗D" in doc.visible
    links = [a["href"] for t, a in doc.tags if t == "a" and not str(a["href"]).startswith("#")]
    assert links, "no evidence link"
    for href in links:
        assert href is not None and href.startswith("../evidence/") and "//" not in href
        assert (out.parent / href).resolve().is_file()


def test_evidence_links_only_for_files_that_exist(tmp_path: Path) -> None:
    report = _big_report(plain=0, sessions=0, findings=2)
    (tmp_path / "ev").mkdir()
    from dotaudit.model.evidence import evidence_name

    first = report.sorted_findings()[0]
    (tmp_path / "ev" / evidence_name(1, first.id)).write_bytes(b"")
    body = render_html(report, evidence_dir=str(tmp_path / "ev"), output=str(tmp_path / "r.html"))
    hrefs = [a["href"] for t, a in Doc(body).tags if t == "a" and "download" in a]
    assert hrefs == [f"ev/{evidence_name(1, first.id)}"]


@pytest.mark.parametrize("section", ["plaintext_dns", "dot_sessions", "targets", "doh_doq"])
def test_malformed_section_rows_do_not_crash(section: str) -> None:
    report = AuditReport(kind="analyze", generated_at="t")
    report.sections[section] = [
        None,
        "text",
        {"padding": "x", "qnames": "y", "verdict": 3, "checks": [None, {"id": None}]},
        {"start": float("nan"), "end": 1e300, "first_ts": "soon", "queries": "many"},
    ]  # type: ignore[list-item]
    report.sections["fallback_events"] = [{"attempt_start": "x"}, {"attempt_start": 1e300}]
    assert "<!DOCTYPE html>" in render_html(report)


# -- the office report, read as an admin reads it ----------------------------------------

SNAKE_CASE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
UNIT_ARTIFACT = re.compile(r"\b(?:s|ms|est|ts|fraction)$")
RAW_TAGS = {"code", "style", "title"}
VOID_TAGS = {"br", "meta", "img", "input", "hr", "link", "wbr", "col", "area", "base"}


class DomWalk(HTMLParser):
    """Text nodes with the elements they sit in (the DOM the HTML5 parser builds for this
    document: every non-void element is closed, so a stack follows nesting)."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[tuple[str, tuple[tuple[str, dict[str, str | None]], ...]]] = []
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID_TAGS:
            self.stack.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth][0] == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.texts.append((data, tuple(self.stack)))

    def words(self) -> list[tuple[str, str]]:
        """(text, innermost tag) outside code and raw-value elements."""
        out = []
        for text, stack in self.texts:
            raw = any(
                tag in RAW_TAGS or {"mono", "hash"} & set((attrs.get("class") or "").split())
                for tag, attrs in stack
            )
            if not raw:
                out.append((text, stack[-1][0] if stack else ""))
        return out


@pytest.fixture(scope="module")
def office_html() -> str:
    from dotaudit.detect.base import Context
    from dotaudit.pipeline import analyze

    report = analyze([ROOT / "pcaps" / "09-office.pcap"], Context(), workers=1)
    return render_html(report)


def test_no_raw_keys_outside_code_in_the_office_report(office_html: str) -> None:
    walk = DomWalk(office_html)
    words = walk.words()
    assert len(words) > 300  # the walk sees the document, not an empty shell
    assert [(t, tag) for t, tag in words if SNAKE_CASE.search(t)] == []
    labels = [t.strip() for t, tag in words if tag in ("th", "dt")]
    assert [label for label in labels if UNIT_ARTIFACT.search(label)] == []
    for phrase in ("delay s", "window s", "queries est", "client padded fraction"):
        assert phrase not in office_html
    # The raw values are there, as code: the walk skipped them, it did not miss them.
    raw = [t for t, stack in walk.texts if stack and stack[-1][0] == "code"]
    assert any("_" in t for t in raw)


def test_the_office_report_opens_with_fix_first_counting_eight_machines(office_html: str) -> None:
    doc = Doc(office_html)
    sections = [a.get("id") for tag, a in doc.tags if tag == "section"]
    assert sections[0] == "fix-first" and sections.index("findings") > 0
    visible = " ".join(doc.visible.split())
    assert "8 machines (9 addresses) in this capture; 5 need a fix" in visible
    assert "2 machines fall back to plaintext DNS when DoT fails" in visible
    assert "2 machines send DNS in plaintext" in visible
    assert visible.index("fall back to plaintext") < visible.index("send DNS in plaintext")
    assert "these addresses share the Ethernet address ba:44:8d:ee:75:fd" in visible
    assert "tls_authentication: GETDNS_AUTHENTICATION_REQUIRED" in visible


def test_fix_first_counts_machines_over_every_capture_read() -> None:
    from dotaudit.detect.base import Context
    from dotaudit.pipeline import analyze

    captures = [ROOT / "pcaps" / "04-fallback.pcap", ROOT / "pcaps" / "09-office.pcap"]
    visible = " ".join(Doc(render_html(analyze(captures, Context(), workers=1))).visible.split())
    assert "in these 2 captures;" in visible and "in this capture" not in visible


def test_info_findings_are_folded_without_remediation(office_html: str) -> None:
    working = office_html.split('<details class="working"', 1)[1].split("</details>", 1)[0]
    assert "DA-DOT-006" in working and "DA-PAD-002" in working
    assert 'class="remedy"' not in working
    # No informational finding has a card of its own.
    cards = re.findall(r'<article class="finding sev-(\w+)"', office_html)
    assert cards and "info" not in cards
    assert "<script" not in office_html.lower()  # folding is details/summary, not script


def test_every_glossary_term_links_once_to_its_entry(office_html: str) -> None:
    doc = Doc(office_html)
    ids = {a.get("id") for _, a in doc.tags}
    links = [a["href"] for t, a in doc.tags if t == "a" and "term" in (a.get("class") or "")]
    assert links and len(links) == len(set(links))  # the first appearance only
    assert all(href is not None and href[1:] in ids for href in links)
    from dotaudit.render.glossary import GLOSSARY

    assert {f"#g-{t.key}" for t in GLOSSARY} >= set(links)
    assert {"#g-dot", "#g-sni", "#g-strict", "#g-ja4", "#g-ecs"} <= set(links)


def test_no_sni_only_where_a_clienthello_was_seen(office_html: str) -> None:
    dot = office_html.split('id="dot"', 1)[1].split("</section>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", dot, re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]
    by_client = {(c[1], c[3]) for c in cells if len(c) > 3}
    assert ("198.51.100.24", "no TLS handshake") in by_client  # the dropped SYN
    assert ("198.51.100.25", "no TLS handshake") in by_client  # the refused one
    assert ("2001:db8:1::22", "(no SNI)") in by_client  # kdig's pin-only hello


def test_timeline_lanes_are_addresses_and_marks_stay_inside_them(office_html: str) -> None:
    svg = office_html.split('class="chart chart-timeline"', 1)[1].split("</svg>", 1)[0]
    labels = re.findall(r'<text x="4" y="[\d.]+" class="lbl addr">([^<]+)</text>', svg)
    assert labels == ["198.51.100.24", "198.51.100.25"]
    lanes = [
        (float(y), float(y) + float(h))
        for y, h in re.findall(
            r'<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)" class="lane"', svg
        )
    ]
    marks = [float(y) for y in re.findall(r'y="([\d.]+)" class="mark', svg)]
    bars = [
        (float(y), float(y) + float(h))
        for y, h in re.findall(
            r'y="([\d.]+)" width="[\d.]+" height="([\d.]+)" class="(?:ok|fail|plain)"', svg
        )
    ]
    assert marks and bars
    for top in marks:  # a mark's glyph reaches about 9 px above its baseline
        assert any(lo + 1 <= top - 9 and top <= hi - 1 for lo, hi in lanes), top
    for lo_bar, hi_bar in bars:
        assert any(lo < lo_bar and hi_bar < hi for lo, hi in lanes), (lo_bar, hi_bar)


def test_timeline_axis_fits_the_events() -> None:
    from dotaudit.render.html_sections import timeline

    report = AuditReport(kind="analyze", generated_at="t")
    report.sections["fallback_events"] = [
        {"client": "10.0.0.2", "attempt_start": 100.0, "attempt_end": 101.0,
         "first_plaintext_ts": 103.0, "failure": "syn_unanswered"},
        {"client": "2001:db8::2", "attempt_start": 100.5, "attempt_end": 100.5,
         "first_plaintext_ts": 100.6, "failure": "reset"},
    ]  # fmt: skip
    view = timeline(report)
    assert view is not None
    ticks = re.findall(r">\+([\d.]+) s<", str(view["svg"]))
    # 3 s of events: the axis ends within a few tenths after the last one, not 10 s on.
    assert 3.0 <= float(ticks[-1]) <= 3.5
    assert view["origin"].startswith("1970-01-01 00:01:39.7")  # 100 s minus 8 % of 3 s


def test_a_capture_set_is_listed_file_by_file_with_frames_per_file(tmp_path: Path) -> None:
    from dotaudit.detect.base import Context
    from dotaudit.pipeline import analyze
    from dotaudit.render.text import render_text
    from tests import rotation

    office = Path(__file__).resolve().parents[2] / "pcaps" / "09-office.pcap"
    files = rotation.tcpdump_size_names(rotation.pieces(office, tmp_path, [100, 132]))
    # The findings that span both files are info, which the page folds into "What is
    # working" without frames: raised here so that one is shown in full.
    from dotaudit.model.findings import Severity
    from dotaudit.model.policy import Policy

    raised = Policy(severity_overrides={"DA-PAD-002": Severity.MEDIUM})
    report = analyze(files, Context(policy=raised))
    spanning = next(f for f in report.findings if f.frames_by_file and f.id == "DA-PAD-002")
    page = render_html(report)
    for path in files:
        assert f"of the capture set {files[0]}" in page
        assert str(path) in page
    first, second = spanning.frames_by_file
    assert f"{first[0]}: {', '.join(map(str, first[1]))}; {second[0]}:" in page
    text = render_text(report)
    assert f"input {files[1]}: 132 packets" in text
    assert f"(file 2 of 2 of the set {files[0]})" in text


def test_the_overview_counts_every_dot_session_and_says_how_many_are_listed() -> None:
    visible = Doc(render_html(capped_dot_report())).visible
    assert (
        "10 DoT sessions seen, 7 established (2 listed below); 1 of those listed was not padded"
        in visible
    )
    whole = capped_dot_report()
    whole.sections["dot_session_totals"] = [
        {"outcome": "established", "sessions": 1},
        {"outcome": "refused", "sessions": 1},
    ]
    visible = Doc(render_html(whole)).visible
    assert "2 DoT sessions seen, 1 established; 1 was not padded" in visible
    assert "listed below" not in visible
