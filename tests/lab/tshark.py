"""tshark as the independent oracle for the sample captures: what it sees (with TLS key
logs where the client wrote them) is stored in each truth file and checked against what
the scenario meant to do."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

SEP = "\x1f"


def _fields(pcap: Path, display: str, fields: list[str], keylog: Path | None) -> list[list[str]]:
    argv = ["tshark", "-n", "-r", str(pcap), "-Y", display, "-T", "fields"]
    argv += ["-E", f"separator={SEP}", "-E", "occurrence=a", "-E", "aggregator=,"]
    # Lab ports are DNS-over-TLS/QUIC; tshark knows 853 but not every port we use.
    argv += ["-d", "tcp.port==853,tls", "-d", "udp.port==853,quic"]
    if keylog is not None and keylog.exists() and keylog.stat().st_size:
        argv += ["-o", f"tls.keylog_file:{keylog}"]
    for f in ["frame.number", *fields]:
        argv += ["-e", f]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout
    return [line.split(SEP) for line in out.splitlines() if line]


DNS_FIELDS = [
    "tcp.dstport",
    "udp.dstport",
    "dns.qry.name",
    "dns.flags.response",
    "dns.opt.code",
    "dns.opt.len",
    "tls.record.length",
    "quic.header_form",
    "tcp.srcport",
    "udp.srcport",
]
HELLO_FIELDS = [
    "tcp.dstport",
    "udp.dstport",
    "tls.handshake.extensions_server_name",
    "tls.handshake.extensions_alpn_str",
]


def _addr(row: list[str], v4: int, v6: int) -> str:
    return row[v4] or row[v6]


def transcript(pcap: Path, keylog: Path | None = None) -> dict[str, Any]:
    """DNS messages (decrypted where possible), ClientHellos, alerts, TCP SYN/RST, ICMP."""
    ipf = ["ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "ip.ttl"]
    dns: list[dict[str, Any]] = []
    for r in _fields(pcap, "dns", [*ipf, *DNS_FIELDS], keylog):
        names, responses = r[8].split(","), r[9].split(",")
        codes, lens = r[10].split(",") if r[10] else [], r[11].split(",") if r[11] else []
        pads = [int(n) for c, n in zip(codes, lens, strict=False) if c == "12"]
        for i, name in enumerate(names):
            dns.append(
                {
                    "frame": int(r[0]),
                    "src": _addr(r, 1, 3),
                    "dst": _addr(r, 2, 4),
                    "dport": int(r[6] or r[7] or 0),
                    "qname": name,
                    "response": responses[min(i, len(responses) - 1)] in ("1", "True"),
                    # Padding is attributed only when the frame holds a single message.
                    "padding": pads[0] if len(names) == 1 and pads else None,
                    "sport": int(r[14] or r[15] or 0),
                    # Decrypted from TLS records or QUIC packets with the key log.
                    "encrypted": bool(r[12] or r[13]),
                }
            )
    hellos = [
        {
            "frame": int(r[0]),
            "src": _addr(r, 1, 3),
            "dst": _addr(r, 2, 4),
            "dport": int(r[6] or r[7] or 0),
            "sni": r[8] or None,
            "alpn": r[9].split(",") if r[9] else [],
            "quic": bool(r[7]),
        }
        for r in _fields(
            pcap,
            "tls.handshake.type == 1",
            [
                *ipf,
                "tcp.dstport",
                "udp.dstport",
                "tls.handshake.extensions_server_name",
                "tls.handshake.extensions_alpn_str",
            ],
            keylog,
        )
    ]
    alerts = [
        {"frame": int(r[0]), "src": _addr(r, 1, 3), "description": r[6]}
        for r in _fields(pcap, "tls.alert_message", [*ipf, "tls.alert_message.desc"], keylog)
    ]
    tcp = [
        {
            "frame": int(r[0]),
            "src": _addr(r, 1, 3),
            "dst": _addr(r, 2, 4),
            "ttl": int(r[5]) if r[5] else None,
            "sport": int(r[6]),
            "dport": int(r[7]),
            "flags": r[8],
        }
        for r in _fields(
            pcap,
            "(tcp.flags.syn == 1 || tcp.flags.reset == 1 || tcp.flags.fin == 1) && !icmp",
            [*ipf, "tcp.srcport", "tcp.dstport", "tcp.flags.str"],
            None,
        )
    ]
    icmp = [
        {
            "frame": int(r[0]),
            "src": _addr(r, 1, 3).split(",")[0],
            "type": int(r[6]),
            "code": int(r[7]),
            # Source port of the quoted packet: which flow this error rejects.
            "quoted_sport": int((r[8] or r[9] or "0").split(",")[0]),
        }
        for r in _fields(
            pcap,
            "icmp.type == 3",
            [*ipf, "icmp.type", "icmp.code", "tcp.srcport", "udp.srcport"],
            None,
        )
    ]
    records = [
        {
            "frame": int(r[0]),
            "src": _addr(r, 1, 3),
            "dst": _addr(r, 2, 4),
            "sport": int(r[6]),
            "dport": int(r[7]),
            "lengths": [int(n) for n in r[8].split(",")],
        }
        for r in _fields(
            pcap,
            "tls.record && !icmp",
            [*ipf, "tcp.srcport", "tcp.dstport", "tls.record.length"],
            None,
        )
        if r[6]
    ]
    packets = len(_fields(pcap, "frame", [], None))
    return {
        "packets": packets,
        "dns": dns,
        "client_hellos": hellos,
        "alerts": alerts,
        "tcp_flags": tcp,
        "tls_records": records,
        "icmp": icmp,
    }
