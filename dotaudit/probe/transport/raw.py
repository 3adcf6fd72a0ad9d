"""Raw SYNs with scapy (root only): the TTL and IP ID of whatever answers tell a
middlebox's reset from the server's. The only module of the probe that imports scapy."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import Any

from dotaudit.model.endpoint import host_port
from dotaudit.probe.transport.base import Count, classify_oserror


@dataclass(frozen=True, slots=True)
class RawReply:
    """What answered a raw SYN: syn-ack, rst, icmp or none."""

    kind: str
    ttl: int | None = None
    ip_id: int | None = None
    icmp: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "ttl": self.ttl, "ip_id": self.ip_id, "icmp": self.icmp}


def can_send_raw() -> bool:
    return os.geteuid() == 0


def _raw_syn(address: str, port: int, timeout: float) -> RawReply:
    # scapy is imported here only: it is slow to load and needs root to send.
    from scapy.config import conf
    from scapy.layers.inet import ICMP, IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.sendrecv import sr1
    from scapy.supersocket import L3RawSocket

    conf.verb = 0
    sport = 20000 + secrets.randbelow(40000)
    syn = TCP(sport=sport, dport=port, flags="S", seq=secrets.randbelow(2**32))
    packet: Any = IPv6(dst=address) / syn if ":" in address else IP(dst=address) / syn
    loopback = address.startswith("127.") or address == "::1"
    saved = conf.L3socket
    try:
        if loopback:
            conf.L3socket = L3RawSocket  # the default L3 socket cannot see replies on lo
        answer = sr1(packet, timeout=max(timeout, 0.05), verbose=0)
    except OSError as exc:
        raise classify_oserror(exc, f"raw SYN to {host_port(address, port)}") from None
    finally:
        conf.L3socket = saved
    if answer is None:
        return RawReply("none")
    ip_id = int(answer.id) if IP in answer else None
    ttl = int(answer.ttl) if IP in answer else int(answer.hlim)
    if TCP in answer and answer[TCP].sport == port:
        flags = str(answer[TCP].flags)
        kind = "syn-ack" if "S" in flags and "A" in flags else ("rst" if "R" in flags else flags)
        return RawReply(kind, ttl, ip_id)
    if ICMP in answer:
        return RawReply("icmp", ttl, ip_id, f"type {answer[ICMP].type} code {answer[ICMP].code}")
    return RawReply("other", ttl, ip_id, answer.summary())


def raw_syn(count: Count, address: str, port: int, timeout: float) -> RawReply:
    """Send one SYN with scapy and describe the first answer (root only)."""
    count("raw_probes")
    return _raw_syn(address, port, timeout)
