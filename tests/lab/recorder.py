"""Recording one sample capture: tcpdump, the exchanges a scenario performs, and the
truth file checked against tshark's transcript and the servers' query logs."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.lab.capture import Capture, start_capture
from tests.lab.procs import LabError, Proc, ProcessManager
from tests.lab.tshark import transcript

TRUTH_SCHEMA = "dotaudit.truth/1"
_LOG_LINE = re.compile(r"info: (\S+) (\S+)\. (\S+) IN$")
_DOQ_LINE = re.compile(r"^query (\S+)\. (\S+)$")


@dataclass
class Exchange:
    """One thing a client did. ``expected`` is what the scenario was built to produce:
    "answered", "auth_failed", "refused", "syn_unanswered", "icmp_rejected" or
    "protocol_version_alert"."""

    id: str
    client: str
    server: str
    port: int
    transport: str
    """"udp", "tcp", "dot" or "doq"."""
    queries: list[tuple[str, str]]
    expected: str
    client_addr: str | None = None
    auth: str | None = None
    """"strict" (CA + name), "pin", "opportunistic" or None for plaintext."""
    sni: str | None = None
    alpn: list[str] = field(default_factory=list)
    tls_version: str | None = None
    query_padding: int | None = None
    """Size the client pads DNS queries to (None: unpadded)."""
    response_padding: int | None = None
    """Block size the server pads responses to (None: unpadded)."""
    connection: str | None = None
    """Outcome in ``dotaudit events`` vocabulary, derived from tshark's TCP flags."""
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["queries"] = [{"qname": q, "qtype": t} for q, t in self.queries]
        return out


@dataclass
class Recorder:
    pm: ProcessManager
    out_dir: Path
    work: Path
    name: str
    description: str
    bpf: str
    interface: str = "lo"
    netns: str | None = None
    logs: list[Proc] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    _capture: Capture | None = None
    _offsets: dict[str, int] = field(default_factory=dict)

    @property
    def pcap(self) -> Path:
        return self.out_dir / f"{self.name}.pcap"

    @property
    def keylog(self) -> Path:
        return self.work / f"{self.name}.keys"

    def __enter__(self) -> Recorder:
        self.keylog.unlink(missing_ok=True)
        self._offsets = {p.name: _size(p.log) for p in self.logs}
        self._capture = start_capture(
            self.pm, self.pcap, self.interface, self.bpf, self.netns, f"tcpdump-{self.name}"
        )
        return self

    def add(self, exchange: Exchange) -> Exchange:
        self.exchanges.append(exchange)
        return exchange

    def __exit__(self, exc_type: object, *rest: object) -> None:
        assert self._capture is not None
        self._capture.stop()
        if exc_type is None:
            self.finish()

    def server_log(self) -> list[dict[str, str]]:
        out = []
        for proc in self.logs:
            text = proc.log.read_bytes()[self._offsets.get(proc.name, 0) :].decode(errors="replace")
            for line in text.splitlines():
                m = _LOG_LINE.search(line)
                if m:
                    out.append({"server": proc.name, "client": m[1], "qname": m[2], "qtype": m[3]})
                m = _DOQ_LINE.search(line)
                if m:
                    out.append({"server": proc.name, "client": "", "qname": m[1], "qtype": m[2]})
        return out

    def finish(self) -> None:
        seen = transcript(self.pcap, self.keylog)
        logged = self.server_log()
        for ex in self.exchanges:
            ex.connection = connection_outcome(ex, seen)
            check(ex, seen, logged, bool(self.logs))
        truth = {
            "schema": TRUTH_SCHEMA,
            "capture": self.pcap.name,
            "description": self.description,
            "capture_filter": self.bpf,
            "interface": self.interface,
            "decrypted_with_keylog": self.keylog.exists(),
            "exchanges": [ex.to_dict() for ex in self.exchanges],
            "server_log": logged,
            "tshark": seen,
        }
        path = self.out_dir / f"{self.name}.truth.json"
        path.write_text(json.dumps(truth, indent=1) + "\n")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _flows(ex: Exchange, seen: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """TCP flag packets of each connection from the client to ex.server:ex.port."""
    flows: dict[int, list[dict[str, Any]]] = {}
    for pkt in seen["tcp_flags"]:
        if pkt["dst"] == ex.server and pkt["dport"] == ex.port:
            if ex.client_addr and pkt["src"] != ex.client_addr:
                continue
            flows.setdefault(pkt["sport"], []).append(pkt)
        elif pkt["src"] == ex.server and pkt["sport"] == ex.port:
            if ex.client_addr and pkt["dst"] != ex.client_addr:
                continue
            flows.setdefault(pkt["dport"], []).append(pkt)
    return list(flows.values())


def connection_outcome(ex: Exchange, seen: dict[str, Any]) -> str | None:
    if ex.transport in ("udp", "doq"):
        return "udp"
    flows = _flows(ex, seen)
    if not flows:
        return None
    pkts = flows[0]
    from_server = [p for p in pkts if p["src"] == ex.server]
    syn_ack = any("S" in p["flags"] and "A" in p["flags"] for p in from_server)
    client_port = pkts[0]["sport"] if pkts[0]["dst"] == ex.server else pkts[0]["dport"]
    if not from_server and any(i["quoted_sport"] == client_port for i in seen["icmp"]):
        return "icmp_rejected"
    if not from_server:
        return "syn_unanswered"
    if not syn_ack:
        return "refused" if any("R" in p["flags"] for p in from_server) else None
    if any("R" in p["flags"] for p in pkts):
        return "closed_rst"
    if any("F" in p["flags"] for p in pkts):
        return "closed_fin"
    return "established"


def check(ex: Exchange, seen: dict[str, Any], logged: list[dict[str, str]], has_logs: bool) -> None:
    """Fail ``make pcaps`` when the capture does not show what the scenario meant."""

    def fail(why: str) -> None:
        raise LabError(f"{ex.id}: {why}")

    wanted_conn = {
        "refused": "refused",
        "syn_unanswered": "syn_unanswered",
        "icmp_rejected": "icmp_rejected",
    }.get(ex.expected)
    if wanted_conn and ex.connection != wanted_conn:
        fail(f"expected {wanted_conn}, tshark shows {ex.connection}")
    if ex.transport in ("dot", "doq") and ex.expected in ("answered", "auth_failed"):
        hellos = [h for h in seen["client_hellos"] if h["dst"] == ex.server]
        if not hellos:
            fail("no ClientHello in the capture")
        if not any(h["sni"] == ex.sni for h in hellos):
            fail(f"SNI {ex.sni!r} not seen: {[h['sni'] for h in hellos]}")
    if ex.expected == "protocol_version_alert" and not any(
        a["description"] == "70" for a in seen["alerts"]
    ):
        fail("no protocol_version alert")
    if ex.expected != "answered":
        return
    if ex.transport in ("udp", "tcp"):
        for qname, _ in ex.queries:
            msgs = [
                m for m in seen["dns"] if m["qname"] == qname and ex.server in (m["src"], m["dst"])
            ]
            if not any(not m["response"] for m in msgs) or not any(m["response"] for m in msgs):
                fail(f"tshark does not show query and response for {qname}")
    logged_names = {entry["qname"] for entry in logged}
    for qname, _ in ex.queries:
        if has_logs and qname not in logged_names:
            fail(f"{qname} not in the server's query log")
