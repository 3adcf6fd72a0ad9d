"""`dotaudit events` on each sample capture agrees with its truth file.

Oracles: the scenario's own record of what each client did (``exchanges``), and the
tshark transcript stored beside it at ``make pcaps`` time (``tshark``). The captures
are committed; these tests never need root.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import dns.rdatatype
import pytest

ROOT = Path(__file__).resolve().parents[2]
PCAPS = ROOT / "pcaps"
DOTAUDIT = ROOT / ".venv" / "bin" / "dotaudit"
TRUTHS = sorted(PCAPS.glob("*.truth.json"))
TLS13_OVERHEAD = 2 + 1 + 16  # DoT length prefix, inner content type, AEAD tag


@functools.cache
def events(pcap: Path) -> list[dict[str, Any]]:
    if not DOTAUDIT.exists():
        pytest.skip(f"{DOTAUDIT} not installed (make venv)")
    done = subprocess.run(
        [str(DOTAUDIT), "events", str(pcap)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def _load(truth_path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    truth = json.loads(truth_path.read_text())
    return truth, events(PCAPS / truth["capture"])


def _exchanges() -> list[tuple[Path, str]]:
    out = []
    for path in TRUTHS:
        out += [(path, ex["id"]) for ex in json.loads(path.read_text())["exchanges"]]
    return out


def _of(evs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in evs if e["type"] == kind]


def _from_client(e: dict[str, Any], ex: dict[str, Any]) -> bool:
    return ex["client_addr"] is None or e["src"] == ex["client_addr"]


def test_every_capture_has_truth() -> None:
    pcaps = {p.name for p in PCAPS.glob("*.pcap")}
    assert pcaps and pcaps == {json.loads(t.read_text())["capture"] for t in TRUTHS}


def test_pcaps_stay_under_budget() -> None:
    assert sum(p.stat().st_size for p in PCAPS.iterdir()) < 2 * 1024 * 1024


@pytest.mark.parametrize(("truth_path", "exid"), _exchanges(), ids=lambda v: getattr(v, "stem", v))
def test_exchange(truth_path: Path, exid: str) -> None:
    truth, evs = _load(truth_path)
    ex = next(e for e in truth["exchanges"] if e["id"] == exid)
    server, port = ex["server"], ex["port"]

    conns = [
        c for c in _of(evs, "connection")
        if c["dst"] == server and c["dport"] == port and _from_client(c, ex)
    ]  # fmt: skip
    assert ex["connection"] in {c["outcome"] for c in conns}, [c["outcome"] for c in conns]

    if ex["transport"] in ("udp", "tcp") and ex["expected"] == "answered":
        msgs = [m for m in _of(evs, "dns") if server in (m["src"], m["dst"])]
        for q in ex["queries"]:
            qtype = int(dns.rdatatype.from_text(q["qtype"]))
            asked = [m for m in msgs if m["qname"] == q["qname"] and m["qtype"] == qtype]
            queries = [m for m in asked if m["qr"] == "query" and _from_client(m, ex)]
            assert queries, f"no query for {q}"
            assert [m for m in asked if m["qr"] == "response"], f"no response for {q}"
            padded = {(m["edns"] or {}).get("padding") is not None for m in queries}
            assert padded == {ex["query_padding"] is not None}

    if ex["transport"] == "dot" and ex["expected"] in ("answered", "auth_failed"):
        hellos = [h for h in _of(evs, "tls_client_hello")
                  if h["dst"] == server and h["dport"] == port and _from_client(h, ex)]  # fmt: skip
        assert hellos and {h["sni"] for h in hellos} == {ex["sni"]}

    if ex["transport"] == "doq":
        initials = [q for q in _of(evs, "quic_initial") if q["dst"] == server]
        initials = [q for q in initials if _from_client(q, ex)]
        assert initials and all("doq" in q["alpn"] for q in initials)
        assert {q["sni"] for q in initials} == {ex["sni"]}

    if (
        ex["transport"] == "dot"
        and ex["expected"] == "answered"
        and ex["tls_version"] == "TLS1.3"
        and ex["query_padding"]
    ):
        # RFC 8467 padding read from the outside: 147 = 128 + 19, 487 = 468 + 19.
        fwd = {r["length"] for c in conns for r in c["tls_records_fwd"]}
        assert ex["query_padding"] + TLS13_OVERHEAD in fwd
        if ex["response_padding"]:
            rev = {r["length"] for c in conns for r in c["tls_records_rev"]}
            assert ex["response_padding"] + TLS13_OVERHEAD in rev


MULTICAST_SERVICES = {"mdns": "mdns", "llmnr": "llmnr"}
"""Our ``service`` name -> tshark's protocol. The stored transcript was made with tshark's
``dns`` display filter, which does not match mDNS (RFC 6762, UDP 5353) or LLMNR
(RFC 4795, UDP 5355): tshark dissects them as their own protocols. Those messages are
the only ones allowed beyond the transcript, and tshark is asked for them directly."""


def tshark_multicast_dns(pcap: Path) -> set[tuple[int, str, bool]]:
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed (make debs)")
    done = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), "-Y", " || ".join(MULTICAST_SERVICES.values()),
         "-T", "fields", "-e", "frame.number", "-e", "dns.qry.name", "-e", "dns.flags.response",
         "-E", "occurrence=f"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    rows = [line.split("\t") for line in done.stdout.splitlines() if line]
    return {(int(frame), name, response == "1") for frame, name, response in rows}


@pytest.mark.parametrize("truth_path", TRUTHS, ids=lambda p: p.stem)
def test_cleartext_dns_matches_tshark(truth_path: Path) -> None:
    truth, evs = _load(truth_path)
    messages = _of(evs, "dns")
    ours = {(m["frame"], m["qname"], m["qr"] == "response") for m in messages}
    theirs = {
        (m["frame"], m["qname"], m["response"])
        for m in truth["tshark"]["dns"]
        if not m["encrypted"] and m["qname"]
    }
    multicast = {
        (m["frame"], m["qname"], m["qr"] == "response")
        for m in messages
        if m["service"] in MULTICAST_SERVICES
    }
    assert ours - multicast == theirs
    assert multicast == tshark_multicast_dns(PCAPS / truth["capture"])


@pytest.mark.parametrize("truth_path", TRUTHS, ids=lambda p: p.stem)
def test_client_hellos_match_tshark(truth_path: Path) -> None:
    truth, evs = _load(truth_path)
    tcp_hellos = [(h["frame"], h["sni"]) for h in _of(evs, "tls_client_hello")]
    quic_hellos = [q["sni"] for q in _of(evs, "quic_initial")]
    expected = truth["tshark"]["client_hellos"]
    assert tcp_hellos == [(h["frame"], h["sni"]) for h in expected if not h["quic"]]
    # tshark may see a QUIC ClientHello once per Initial datagram carrying it.
    assert set(quic_hellos) == {h["sni"] for h in expected if h["quic"]}
