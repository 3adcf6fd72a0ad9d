"""Every capture in ../shared/corpus/public against the facts its MANIFEST lists.

Oracle: the tshark 4.0.17 transcripts summarised in MANIFEST.md — section (a) DNS
messages on port 53 (counts by direction and names), (a2) DNS on any port, (b) TLS and
QUIC ClientHellos (transport, SNI, ALPN), (b3) ECH/ESNI extensions, (c) TCP streams on
port 853. Where tshark is wrong or differs from the RFC, ``DIFFERENCES`` says why.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest

from dotaudit.pipeline import CaptureRun
from tests.conftest import CORPUS, corpus_path


@dataclass
class ManifestCase:
    path: str
    frames: int | None = None
    dns53: tuple[int, int, int] | None = None  # messages, queries, responses
    dns53_names: dict[str, int] = field(default_factory=dict)
    dns53_names_complete: bool = True
    dns53_distinct: int | None = None
    dns_any: int | None = None
    hellos: Counter[tuple[str, str | None, tuple[str, ...]]] = field(default_factory=Counter)
    hello_count: int = 0
    ech_count: int | None = None
    dot_streams: int | None = None


HEADING = re.compile(r"^### (\S+)")
FRAMES = re.compile(r"; (\d+) frames")
DNS53 = re.compile(
    r"tshark \(a\) DNS on port 53: (\d+) messages \((\d+) queries, (\d+) responses\)"
)
DNS_ANY = re.compile(r"tshark \(a2\) DNS on any port[^:]*: (\d+) messages")
NAME = re.compile(r"`([^`]*)`×(\d+)")
DISTINCT = re.compile(r"\((\d+) distinct\)")
HELLOS = re.compile(r"tshark \(b\) ClientHellos: (\d+)")
HELLO_ITEM = re.compile(r"(tcp|udp) `([^`]*)` alpn (\S+) ×(\d+)")
ECH = re.compile(r"tshark \(b3\) ClientHellos with ECH[^:]*: (\d+)")
DOT = re.compile(r"tshark \(c\) TCP streams on port 853: (\d+)")


def parse_manifest(text: str) -> list[ManifestCase]:
    cases: list[ManifestCase] = []
    case: ManifestCase | None = None
    for line in text.splitlines():
        if m := HEADING.match(line):
            case = ManifestCase(m.group(1))
            cases.append(case)
            continue
        if case is None:
            continue
        if (m := FRAMES.search(line)) and line.startswith("- size"):
            case.frames = int(m.group(1))
        elif m := DNS53.search(line):
            case.dns53 = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
            case.dns53_names = {n: int(c) for n, c in NAME.findall(line)}
            case.dns53_names_complete = "…" not in line
            if d := DISTINCT.search(line):
                case.dns53_distinct = int(d.group(1))
        elif m := DNS_ANY.search(line):
            case.dns_any = int(m.group(1))
        elif m := HELLOS.search(line):
            case.hello_count = int(m.group(1))
            for transport, sni, alpn, count in HELLO_ITEM.findall(line):
                key = (
                    transport,
                    None if sni == "(no SNI)" else sni,
                    () if alpn == "-" else tuple(alpn.split("|")),
                )
                case.hellos[key] += int(count)
        elif m := ECH.search(line):
            case.ech_count = int(m.group(1))
        elif m := DOT.search(line):
            case.dot_streams = int(m.group(1))
    return [c for c in cases if c.path.endswith((".pcap", ".pcapng", ".gz"))]


# Where dotaudit deliberately differs from the tshark transcript, and why.
DIFFERENCES: dict[str, dict[str, Any]] = {
    # tshark's plain `dns` filter misreads 14 QUIC short-header packets on UDP/784 as
    # malformed DNS (MANIFEST note). They are not DNS and must not count as leaks.
    "ndpi/doq-localhost-784/doq.pcapng": {"dns_any": 0},
    # Cleartext DoH over h2c: tshark decodes the 4 application/dns-message responses, as
    # dotaudit does (service "doh"); dotaudit also decodes the 4 queries from the GET
    # requests' base64url `dns=` parameter (RFC 8484 §4.1), which tshark 4.0 leaves as a
    # URI. Suricata's doh2 oracle agrees: 2 queries and 2 responses per name.
    "suricata-verify/doh-h2c-port80/dns_over_https.pcap": {"dns_any": 8},
}


@cache
def manifest_cases() -> dict[str, ManifestCase]:
    text = (CORPUS / "MANIFEST.md").read_text(encoding="utf-8")
    return {c.path: c for c in parse_manifest(text)}


def case_ids() -> list[str]:
    if not (CORPUS / "MANIFEST.md").exists():
        return ["MANIFEST.md"]  # corpus_path() in the test skips (or fails under CI)
    return sorted(manifest_cases())


@cache
def events_of(path: str) -> tuple[list[dict[str, Any]], int]:
    run = CaptureRun(corpus_path(path))
    events = [e.to_dict() for e in run.events()]
    return events, run.summary.packets


def test_manifest_lists_every_capture() -> None:
    corpus_path("MANIFEST.md")
    assert len(manifest_cases()) == 41


@pytest.mark.parametrize("path", case_ids())
def test_capture_matches_manifest(path: str) -> None:
    corpus_path(path)
    case = manifest_cases()[path]
    expected = DIFFERENCES.get(path, {})
    events, packets = events_of(path)

    if case.frames is not None:
        assert packets == case.frames, "frame count differs from the MANIFEST"

    dns = [e for e in events if e["type"] == "dns"]
    unparseable = [e for e in events if e["type"] == "anomaly" and e["what"] == "dns_unparseable"]
    if case.dns53 is not None:
        on53 = [e for e in dns if 53 in (e["sport"], e["dport"])]
        lost53 = [e for e in unparseable if 53 in (e["sport"], e["dport"])]
        messages, queries, responses = case.dns53
        assert len(on53) + len(lost53) == messages
        if not lost53:
            assert sum(e["qr"] == "query" for e in on53) == queries
            assert sum(e["qr"] == "response" for e in on53) == responses
        # tshark writes placeholders such as `<Name too long>` for names it cannot show.
        tshark_names = {n for n in case.dns53_names if not n.startswith("<")}
        ours = {e["qname"] for e in on53 if e["qname"]}
        clean = {e["qname"] for e in on53 if e["qname"] and not e["malformed"]}
        if case.dns53_names_complete:
            # Names from messages that are malformed after the question (snaplen cut)
            # are reported like tshark does; names that are themselves malformed are
            # where tshark prints a placeholder.
            assert tshark_names <= ours
            assert clean <= tshark_names
        else:
            assert tshark_names <= ours
            assert len({e["qname"] for e in on53}) == case.dns53_distinct

    if "dns_any" in expected or case.dns_any is not None:
        want = expected.get("dns_any", case.dns_any)
        assert len(dns) + len(unparseable) == want

    hellos: Counter[tuple[str, str | None, tuple[str, ...]]] = Counter()
    ech = 0
    for e in events:
        if e["type"] == "tls_client_hello":
            hellos[("tcp", e["sni"], tuple(e["alpn"]))] += 1
            ech += bool(e["ech"] or e["esni"])
        elif e["type"] == "quic_initial":
            hellos[("udp", e["sni"], tuple(e["alpn"]))] += 1
            ech += bool(e["ech"])
    assert sum(hellos.values()) == case.hello_count
    assert hellos == case.hellos
    if case.ech_count is not None:
        assert ech == case.ech_count

    if case.dot_streams is not None:
        streams = [
            e
            for e in events
            if e["type"] == "connection"
            and e["transport"] == "tcp"
            and 853 in (e["sport"], e["dport"])
        ]
        assert len(streams) == case.dot_streams


@pytest.mark.parametrize("path", case_ids())
def test_no_exception_escapes_and_anomalies_are_named(path: str) -> None:
    """Malformed input becomes anomaly records with a name, never an exception."""
    corpus_path(path)
    events, _ = events_of(path)
    for e in events:
        if e["type"] == "anomaly":
            assert re.fullmatch(r"[a-z0-9_]+", e["what"]), e
