"""The HTML report in real headless Chromium: hostile text stays text, nothing loads.

Oracle: Chromium's own DOM after parsing and (attempted) script execution, read with
``--dump-dom``. How "no network request" is checked: Chromium runs with every request,
loopback included, sent to a proxy that is a listening socket of this test and records
what reaches it. Chromium's own background services (update checks, network time) also
talk to that proxy on their own; they go only to Google hosts, which the report never
names, so any other host in the log would have come from the page. A positive control
proves the trap sees a page's request. Local files (``src=x``) never touch the proxy, so
the DOM checks (no ``img``, ``script``, ``on*`` attribute) cover them.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CORPUS, ROOT
from tests.test_render import hostile
from tests.test_render.test_html import Doc, hostile_report

BROWSER_HOSTS = ("google.com", "googleapis.com", "gvt1.com", "gvt2.com", "gstatic.com")
"""Where Chromium's background services go; never a host the report could name."""
FORBIDDEN_TAGS = {"script", "img", "iframe", "object", "embed", "link", "base", "form", "input"}


class Trap:
    """A proxy that answers nothing and records the first bytes of every request."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.requests: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(1.0)
                try:
                    head = conn.recv(512).decode("latin-1")
                except OSError:
                    continue
                # Chromium opens spare connections to its proxy ahead of need and may
                # close them unused: a connection that sent nothing asked for nothing.
                if head:
                    self.requests.append(head.split("\r\n", 1)[0])

    def page_requests(self) -> list[str]:
        """Requests not explained by Chromium's background services."""
        out = []
        for line in self.requests:
            target = line.split(" ")[1] if " " in line else line
            host = target.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
            if not any(host == h or host.endswith("." + h) for h in BROWSER_HOSTS):
                out.append(line)
        return out

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def trap() -> Iterator[Trap]:
    t = Trap()
    yield t
    t.close()


def browse(chromium: str, page: Path, trap: Trap, *extra: str) -> str:
    with tempfile.TemporaryDirectory(prefix="dotaudit-chromium-") as profile:
        result = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--no-pings",
                f"--user-data-dir={profile}",
                f"--proxy-server=http://127.0.0.1:{trap.port}",
                "--proxy-bypass-list=<-loopback>",
                *extra,
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def assert_inert(dom: str) -> Doc:
    doc = Doc(dom)
    for tag, attrs in doc.tags:
        assert tag not in FORBIDDEN_TAGS, (tag, attrs)
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, value)
            assert name != "data-pwned", (tag, attrs)
            if name == "href" and value:
                assert not value.lower().lstrip().startswith("javascript:"), value
    titles = [t for t, _ in doc.tags if t == "title"]
    assert titles and "pwned" not in dom.split("</title>", 1)[0]
    return doc


def test_trap_sees_a_page_request(chromium: str, trap: Trap, tmp_path: Path) -> None:
    """Positive control: without the CSP, an <img> does reach the trap."""
    page = tmp_path / "leaky.html"
    page.write_text('<p>x</p><img src="http://leak.dotaudit.test/pixel.png">', encoding="utf-8")
    browse(chromium, page, trap, "--dump-dom")
    assert any("leak.dotaudit.test" in r for r in trap.page_requests()), trap.requests


def test_hostile_capture_report_is_inert_in_chromium(
    chromium: str, trap: Trap, tmp_path: Path
) -> None:
    capture = hostile.write_hostile_capture(tmp_path / "hostile.pcap")
    report_json = tmp_path / "hostile.json"
    report_html = tmp_path / "hostile.html"
    for out in (report_json, report_html):
        result = subprocess.run(
            [sys.executable, "-m", "dotaudit", "analyze", str(capture), "-o", str(out), "-q"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode in (0, 1), result.stderr
    data = json.loads(report_json.read_text(encoding="utf-8"))
    snis = {s["sni"] for s in data["dot_sessions"]}
    assert hostile.SCRIPT in snis and hostile.IMG in snis and hostile.JS_URL in snis
    subjects = {(s["certificate"] or {}).get("subject", "") for s in data["dot_sessions"]}
    assert any("\\<script\\>alert(1)" in s for s in subjects)
    qnames = [q for row in data["plaintext_dns"] for q in row["qnames"]]
    assert hostile.SCRIPT in qnames and hostile.MAX_LABELS in qnames

    dom = browse(chromium, report_html, trap, "--dump-dom")
    doc = assert_inert(dom)
    visible = doc.visible
    assert hostile.SCRIPT in visible  # as SNI and as a query name, shown as text
    assert hostile.IMG in visible and hostile.JS_URL in visible
    assert "\\<script\\>alert(1)\\</script\\>\\u202emoc.\\00" in visible  # the subject
    assert "moc.elgoog\\xe2\\x80\\xae.example" in visible  # RLO, escaped by the dissector
    assert "nul\\x00ctl\\x01\\x1b.example" in visible
    assert hostile.MAX_LABELS in visible
    assert hostile.LONG_NAME[:300] in visible and "[700 more characters]" in visible
    assert "\u202e" not in dom and "\x00" not in dom
    assert trap.page_requests() == []


def test_hostile_json_report_is_inert_in_chromium(
    chromium: str, trap: Trap, tmp_path: Path
) -> None:
    """Raw bidi and control characters, as a hand-edited JSON report could carry them."""
    source = tmp_path / "raw.json"
    source.write_text(json.dumps(hostile_report().to_dict()), encoding="utf-8")
    page = tmp_path / "raw.html"
    result = subprocess.run(
        [sys.executable, "-m", "dotaudit", "report", str(source), "-o", str(page), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode in (0, 1), result.stderr
    dom = browse(chromium, page, trap, "--dump-dom")
    visible = assert_inert(dom).visible
    assert "<script>document.title='x'</script>" in visible
    assert "[U+202E RLO]" in visible and "[U+0000 NUL]" in visible
    assert "\u202e" not in dom and "\x00" not in dom
    assert trap.page_requests() == []


def demo_captures(tmp_path: Path) -> list[Path]:
    """The bundled office capture when the lab has made it; else corpus and synthetic ones."""
    office = sorted((ROOT / "pcaps").glob("*office*.pcap*"))
    if office:
        return office
    from tests import pcapgen

    paths = [
        pcapgen.fallback_capture(tmp_path / "fallback.pcap", "drop"),
        pcapgen.plaintext_capture(
            tmp_path / "leaks.pcap", ["intranet.corp.example", "mail.example.org"]
        ),
    ]
    for relative in (
        "ndpi/dot-android10-private-dns/googledns_android10.pcap",
        "ndpi/dot-google-no-sni/dns_dot.pcap",
        "ndpi/doh-cloudflare-sni/dns_doh.pcap",
    ):
        if (CORPUS / relative).exists():
            paths.append(CORPUS / relative)
    return paths


def test_demo_report_screenshot(chromium: str, trap: Trap, tmp_path: Path) -> None:
    """Renders the demo report and saves reports/demo.png (desktop) and demo-phone.png."""
    page = tmp_path / "demo.html"
    captures = [str(p) for p in demo_captures(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "dotaudit", "analyze", *captures, "-o", str(page), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode in (0, 1), result.stderr
    reports = ROOT / "reports"
    reports.mkdir(exist_ok=True)
    for name, size in (("demo.png", "1280,2400"), ("demo-phone.png", "390,2400")):
        shot = reports / name
        shot.unlink(missing_ok=True)
        browse(chromium, page, trap, f"--screenshot={shot}", f"--window-size={size}")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    assert trap.page_requests() == []


def test_office_report_full_and_redacted_render_alike_and_are_saved(
    chromium: str, trap: Trap, tmp_path: Path
) -> None:
    """The office report, full and redacted (--redact through the CLI), in Chromium at 1280
    and 390 px: the same sections and Fix-first groups, and screenshots in reports/."""
    office = ROOT / "pcaps" / "09-office.pcap"
    key = tmp_path / "office.key"
    pages = {"office": tmp_path / "office.html", "office-redacted": tmp_path / "redacted.html"}
    for name, page in pages.items():
        redact = ["--redact", "--redact-key", str(key)] if name.endswith("redacted") else []
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "dotaudit",
                "analyze",
                str(office),
                "-o",
                str(page),
                "-q",
                "--fail-on",
                "none",
                *redact,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
    doms = {name: Doc(browse(chromium, page, trap, "--dump-dom")) for name, page in pages.items()}

    def outline(doc: Doc) -> list[str]:
        """Sections by id, and each finding, fix and list item by its kind: anchors hash
        the dedup keys, which redaction rewrites, and table rows of names that masking
        made equal merge (three names under *.test are one row)."""
        kinds = ("section", "article", "li", "details")
        return [
            a.get("id") or "" if tag == "section" else tag for tag, a in doc.tags if tag in kinds
        ]

    assert outline(doms["office"]) == outline(doms["office-redacted"])
    full, redacted = (" ".join(d.visible.split()) for d in doms.values())
    for text in (full, redacted):
        assert "Fix first" in text and "8 machines (9 addresses) in this capture" in text
        assert "2 machines fall back to plaintext DNS when DoT fails" in text
    assert "198.51.100.24" in full and "198.51.100.24" not in redacted
    assert "Redacted report." in redacted and "Redacted report." not in full
    reports = ROOT / "reports"
    reports.mkdir(exist_ok=True)
    for name, page in pages.items():
        for width, height in ((1280, 2600), (390, 3400)):
            shot = reports / f"{name}-{width}.png"
            shot.unlink(missing_ok=True)
            browse(chromium, page, trap, f"--screenshot={shot}", f"--window-size={width},{height}")
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert shot.stat().st_size > 20_000
    assert trap.page_requests() == []


OVERFLOW_PROBE = """<script>(function () {
  var width = document.documentElement.clientWidth, over = [];
  document.querySelectorAll("#probe table, #probe .scroll, #probe .matrix-group, #probe article")
    .forEach(function (el) {
      var box = el.getBoundingClientRect();
      if (el.scrollWidth > el.clientWidth + 1 || box.right > width + 1 || box.left < -1) {
        over.push(el.tagName + "." + el.className + " " + el.scrollWidth + ">" + el.clientWidth);
      }
    });
  var out = parent.document.createElement("pre");
  out.id = "overflow";
  out.textContent = JSON.stringify({width: width, page: document.documentElement.scrollWidth,
                                    over: over});
  parent.document.body.appendChild(out);
})();</script>"""
"""Measures, inside the report, every probe table and its box against the viewport. Only
this test's copy of the report runs it: the report itself forbids scripts (CSP)."""


def probe_matrix_report() -> str:
    """Every registered check on resolvers with long labels, each status somewhere."""
    from dotaudit.probe.base import CheckAttempt, CheckStatus, ProbeConfig
    from dotaudit.probe.registry import CHECKS
    from dotaudit.probe.runner import TargetResult, probe_report
    from dotaudit.probe.target import parse_target
    from dotaudit.probe.verdict import Verdict
    from dotaudit.render.html import render_html

    statuses = list(CheckStatus)
    evidence = {
        "class": "refused",
        "connect_ms": 0.113,
        "leaf_pin": "A" * 43 + "=",
        "udp53": {"answered": False, "error": "UDP DNS to [2001:db8::53]:53: refused"},
    }
    targets = ("dns.test@127.53.0.1", "resolver-with-a-long-name.example.internal@"
               "[2001:db8:ffff:ffff::53]:8853", "192.0.2.1")  # fmt: skip
    results = [
        TargetResult(
            parse_target(target),
            "dns.test",
            [
                CheckAttempt(
                    c.id,
                    statuses[(i + n) % len(statuses)],
                    c.level,
                    c.rfc,
                    evidence,
                    "a reason of some length that explains the result",
                    c.title,
                )
                for i, c in enumerate(CHECKS)
            ],
            Verdict("refuse", "plaintext-fallback", ("why",)),
        )
        for n, target in enumerate(targets)
    ]
    return render_html(probe_report(results, ProbeConfig(), "2024-01-01T00:00:00Z"))


@pytest.mark.parametrize("width", [1280, 390])
def test_probe_matrix_fits_without_sideways_scrolling(
    chromium: str, trap: Trap, tmp_path: Path, width: int
) -> None:
    """Before, the resolver x check matrix was one table of 28 columns that scrolled
    sideways even at 1280 px; grouped, each table fits, down to a phone's 390 px.

    The report is laid out in an iframe exactly ``width`` px wide (headless Chromium's
    window has a minimum width larger than a phone's), its scrollbar hidden as on a phone.
    """
    import html as html_lib
    import re

    page = probe_matrix_report()
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    page = page.replace("</head>", "<style>::-webkit-scrollbar{display:none}</style></head>")
    page = page.replace("</body>", OVERFLOW_PROBE + "</body>")
    outer = tmp_path / "frame.html"
    outer.write_text(
        f'<!doctype html><body style="margin:0"><iframe style="width:{width}px;height:3000px;'
        f'border:0" srcdoc="{html_lib.escape(page, quote=True)}"></iframe></body>',
        encoding="utf-8",
    )
    dom = browse(chromium, outer, trap, "--dump-dom", "--window-size=1400,3000")
    found = re.search(r'<pre id="overflow">(.*?)</pre>', dom)
    assert found, dom[-2000:]
    measured = json.loads(html_lib.unescape(found.group(1)))
    assert measured["width"] == width
    assert measured["over"] == [] and measured["page"] == width, measured
    assert trap.page_requests() == []
