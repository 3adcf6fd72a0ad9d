"""The checks every tunnel capture (``tests/data/tunnels``) must pass; oracle: tshark.

- tshark decodes the expected layers (``frame.protocols``) in every inner DNS and TLS
  ClientHello frame: the capture really is what it claims to be;
- dotaudit reports the same DNS question names and ClientHello SNIs as tshark, at the
  same frames, each event naming the tunnel;
- the report counts as many packets per encapsulation (and per non-IP kind) as tshark
  finds frames with that layer;
- the inner flows come out exactly as the same packets give them unwrapped: same
  5-tuples, outcomes, packet and byte counts (both directions of a tunnelled flow meet).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dotaudit.model.events import ConnectionSeen, DnsMessageSeen, Event, TlsClientHelloSeen
from dotaudit.pipeline import CaptureRun
from tests.lab.tunnels import TunnelCapture, read_pcap, vxlan_inner
from tests.test_capture.capwrite import pcap

SEP = "\x1f"


def tshark(
    path: Path, display: str, fields: list[str], decode: tuple[str, ...] = ()
) -> list[list[str]]:
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed (make debs)")
    argv = ["tshark", "-n", "-r", str(path), "-d", "tcp.port==853,tls"]
    for rule in decode:
        argv += ["-d", rule]
    argv += ["-Y", display]
    argv += ["-T", "fields", "-E", f"separator={SEP}", "-E", "aggregator=,"]
    for name in ["frame.number", *fields]:
        argv += ["-e", name]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout
    return [line.split(SEP) for line in out.splitlines() if line]


def tshark_count(path: Path, display: str, decode: tuple[str, ...] = ()) -> int:
    return len(tshark(path, display, [], decode))


def run(path: Path) -> tuple[list[Event], dict[str, object]]:
    capture = CaptureRun(path, hash_input=False)
    events = list(capture.events())
    return events, capture.summary.to_dict()


def flow_facts(events: list[Event], version: int | None = None) -> list[tuple[Any, ...]]:
    facts = [
        (
            e.src,
            e.sport,
            e.dst,
            e.dport,
            e.transport,
            e.outcome,
            e.packets_fwd,
            e.packets_rev,
            e.bytes_fwd,
            e.bytes_rev,
            e.handshake_seen,
            e.closed_by,
        )
        for e in events
        if isinstance(e, ConnectionSeen)
    ]
    if version is not None:
        facts = [f for f in facts if (":" in f[0]) == (version == 6)]
    return sorted(facts, key=repr)


def unwrapped_flows(vxlan_pcap: Path, work: Path) -> list[Event]:
    """The events of the recorded inner frames as a plain Ethernet capture."""
    plain = work / "unwrapped.pcap"
    plain.write_bytes(pcap([(ts, frame) for ts, frame, _up in vxlan_inner(read_pcap(vxlan_pcap))]))
    return run(plain)[0]


def check_capture(path: Path, spec: TunnelCapture, unwrapped: list[Event]) -> None:
    events, summary = run(path)

    # tshark decodes every layer of every inner DNS and ClientHello frame.
    rows = tshark(
        path,
        "dns || tls.handshake.type == 1",
        ["frame.protocols", "dns.qry.name", "tls.handshake.extensions_server_name"],
        spec.tshark_decode,
    )
    assert rows, f"{path.name}: tshark sees no DNS or ClientHello"
    for frame, protocols, _names, _sni in rows:
        assert spec.tshark_layers in protocols, f"{path.name} frame {frame}: {protocols}"

    want_dns = sorted(
        (int(frame), name) for frame, _p, names, _s in rows if names for name in names.split(",")
    )
    want_sni = sorted((int(frame), sni) for frame, _p, _n, sni in rows if sni)
    got_dns = sorted((e.frame, e.qname) for e in events if isinstance(e, DnsMessageSeen))
    got_sni = sorted((e.frame, e.sni) for e in events if isinstance(e, TlsClientHelloSeen))
    assert got_dns == want_dns
    assert got_sni == want_sni
    assert want_dns and want_sni

    # Every fact names its tunnel; nothing was malformed.
    facts = [
        e for e in events if isinstance(e, DnsMessageSeen | TlsClientHelloSeen | ConnectionSeen)
    ]
    assert {e.tunnel for e in facts} == set(spec.tunnels)
    assert [e for e in events if e.type == "anomaly"] == []

    # The report counts what tshark counts.
    assert summary.get("encapsulations") == {
        kind: tshark_count(path, display, spec.tshark_decode) for kind, display in spec.counted
    }
    not_ip = {
        name: tshark_count(path, display, spec.tshark_decode) for name, display in spec.not_ip
    }
    assert summary.get("not_ip", {}) == {k: n for k, n in not_ip.items() if n}

    # The inner flows are the flows of the same packets unwrapped.
    assert flow_facts(events) == flow_facts(unwrapped, spec.inner_version)
