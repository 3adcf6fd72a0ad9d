"""Parallel ``dotaudit events`` (:mod:`dotaudit.parallel_events`): N processes, each
dissecting a share of the flows, must write exactly what one process writes. Oracle: the
serial pass (CaptureRun + event_json_line)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dotaudit.errors import InputError
from dotaudit.model.events import event_json_line
from dotaudit.parallel_events import ShardedRun, ShardPass
from dotaudit.pipeline import CaptureRun
from tests.conftest import CORPUS, ROOT, corpus_path

PCAPS = sorted((ROOT / "pcaps").glob("*.pcap*"))
CORPUS_CAPTURES = [
    "suricata-verify/ja4-quic/input.pcap",
    "zeek/quic-multiple-initial-crypto",
    "zeek/dns-ipv6-fragmented",
    "zeek/dns-tcp-tkey",
    "zeek/tls12-fragmented-handshake",
    "dpkt/dns-truncated",
    "suricata-verify/tls-client-hello-frag-mtu300/dump_mtu300.pcap",
    "ndpi/dns-malformed",
]


def serial_text(path: Path, types: frozenset[str] | None = None) -> str:
    run = CaptureRun(path, hash_input=False)
    return "".join(event_json_line(e) for e in run.events() if types is None or e.type in types)


def sharded_text(path: Path, shards: int, types: frozenset[str] | None = None) -> str:
    return "".join(ShardedRun(path, shards, types).lines())


def captures_in(relative: str) -> Iterator[Path]:
    path = corpus_path(relative)
    if path.is_file():
        yield path
        return
    for candidate in sorted(path.rglob("*")):
        if candidate.suffix in (".pcap", ".pcapng", ".gz"):
            yield candidate


@pytest.mark.parametrize("shards", [2, 3])
def test_mixed_capture_is_identical_to_one_pass(mixed_capture: Path, shards: int) -> None:
    serial = serial_text(mixed_capture)
    assert serial.count('"type":"connection"') > 1000  # the test means something
    assert sharded_text(mixed_capture, shards) == serial


@pytest.mark.parametrize("path", PCAPS, ids=lambda p: p.name)
def test_sample_captures_are_identical_to_one_pass(path: Path) -> None:
    assert sharded_text(path, 2) == serial_text(path)


@pytest.mark.parametrize("relative", CORPUS_CAPTURES)
def test_corpus_captures_are_identical_to_one_pass(relative: str) -> None:
    paths = list(captures_in(relative))
    assert paths, f"no capture under {CORPUS / relative}"
    for path in paths:
        assert sharded_text(path, 2) == serial_text(path), path


def test_decoder_anomalies_and_icmp_keep_their_place(tmp_path: Path) -> None:
    """Decoder anomalies (reported by shard 0 only), an ICMP error (routed to the shard of
    the flow it quotes) and flows expiring in sweeps, interleaved over many flows."""
    from scapy.all import IP, UDP, Ether, Raw
    from scapy.layers.inet import ICMP

    from tests.pcapgen import MAC_C, MAC_S, RESOLVER, dns_udp_exchange, write

    packets = []
    for i in range(60):
        ts = 1000.0 + i * 0.7
        packets += dns_udp_exchange(f"n{i}.example", ts, sport=40000 + i * 37, qid=i)
        if i % 7 == 3:  # an IPv4 header whose IHL points past the packet
            bad = Ether(src=MAC_C, dst=MAC_S, type=0x0800) / Raw(b"\x4f" + bytes(30))
            bad.time = ts + 0.3
            packets.append(bad)
        if i % 11 == 5:  # the first fragment of a datagram that never completes
            frag = Ether(src=MAC_C, dst=MAC_S) / IP(dst=RESOLVER, id=i, flags="MF")
            frag = frag / UDP(sport=41000 + i, dport=53) / Raw(bytes(64))
            frag.time = ts + 0.4
            packets.append(frag)
        if i % 13 == 6:  # the resolver's port is closed for this query
            quoted = IP(src="192.0.2.10", dst=RESOLVER) / UDP(sport=40000 + i * 37, dport=53)
            icmp = Ether(src=MAC_S, dst=MAC_C) / IP(src=RESOLVER, dst="192.0.2.10")
            icmp = icmp / ICMP(type=3, code=3) / bytes(quoted)[:28]
            icmp.time = ts + 0.02
            packets.append(icmp)
    path = write(tmp_path / "mixed-anomalies.pcap", packets)
    serial = serial_text(path)
    assert serial.count('"what":"ip_header_malformed"') == 9
    assert serial.count('"what":"ip_frag_incomplete"') == 5
    assert serial.count('"icmp":"port-unreachable"') == 5
    for shards in (2, 3):
        assert sharded_text(path, shards) == serial


TUNNEL_CAPTURES = sorted((ROOT / "tests" / "data" / "tunnels").glob("*.pcap"))


@pytest.mark.parametrize("path", TUNNEL_CAPTURES, ids=lambda p: p.name)
def test_tunnel_captures_are_identical_to_one_pass(path: Path) -> None:
    assert sharded_text(path, 2) == serial_text(path)


def test_tunnelled_flows_are_sharded_by_their_inner_flow(tmp_path: Path) -> None:
    """DNS exchanges in VXLAN whose outer source ports vary (so outer and inner 5-tuples
    hash to different shards), broken inner headers (decoder anomalies inside a tunnel)
    and an ICMP error inside the tunnel, over many flows."""
    from tests.lab import encap
    from tests.test_capture.capwrite import pcap
    from tests.test_capture.test_decode_tunnels import A, B, C, S, inner_eth, inner_ip, over_udp

    records: list[tuple[float, bytes]] = []
    for i in range(60):
        ts = 1000.0 + i * 0.7
        query = inner_eth(C, S, 40000 + i * 37)
        answer = inner_eth(S, C, 53, 40000 + i * 37)
        records.append((ts, over_udp(encap.vxlan(query, 5), 4789, A, B, 1000 + i)))
        records.append((ts + 0.01, over_udp(encap.vxlan(answer, 5), 4789, B, A, 3000 + i * 7)))
        if i % 7 == 3:
            broken = encap.ethernet(b"\x4f" + bytes(30), 0x0800)
            records.append((ts + 0.3, over_udp(encap.vxlan(broken, 5), 4789, A, B, 2000 + i)))
        if i % 13 == 6:
            quoted = inner_ip(C, S, 40000 + i * 37)[:28]
            icmp = encap.ipv4(b"\x03\x03\x00\x00\x00\x00\x00\x00" + quoted, S, C, 1)
            frame = encap.ethernet(icmp, 0x0800)
            records.append((ts + 0.02, over_udp(encap.vxlan(frame, 5), 4789, B, A, 4000 + i)))
    path = tmp_path / "tunnelled.pcap"
    path.write_bytes(pcap(records))
    serial = serial_text(path)
    assert serial.count('"tunnel":"vxlan:vni=5@192.0.2.1-192.0.2.2"') > 180
    assert serial.count('"what":"ip_header_malformed"') == 9
    assert serial.count('"icmp":"port-unreachable"') == 5
    for shards in (2, 3):
        assert sharded_text(path, shards) == serial


def test_type_filter_applies_in_every_shard(mixed_capture: Path) -> None:
    types = frozenset({"dns", "quic_initial"})
    sharded = sharded_text(mixed_capture, 2, types)
    assert sharded == serial_text(mixed_capture, types)
    assert '"type":"connection"' not in sharded and '"type":"quic_initial"' in sharded


def test_every_shard_dissects_a_real_share(mixed_capture: Path) -> None:
    counts = []
    for shard in range(2):
        run = ShardPass(mixed_capture, shard, 2, frozenset({"connection"}))
        counts.append(sum(len(batch) for _, batch in run.batches()))
    total = serial_text(mixed_capture, frozenset({"connection"})).count("\n")
    assert sum(counts) == total
    assert min(counts) > total // 4, counts  # the port hash spreads flows, it does not pile them


@pytest.mark.parametrize("which", ["mixed", "tunnels"])
def test_summary_matches_one_pass(mixed_capture: Path, which: str) -> None:
    path = mixed_capture if which == "mixed" else ROOT / "tests/data/tunnels/pppoe-qinq.pcap"
    serial = CaptureRun(path, hash_input=False)
    for _ in serial.events():
        pass
    sharded = ShardedRun(path, 2, None)
    for _ in sharded.lines():
        pass
    one, many = serial.summary.to_dict(), sharded.summary.to_dict()
    assert many == one
    if which == "tunnels":  # the tallies are there to compare
        assert one["encapsulations"] and one["not_ip"]


def test_truncated_capture_keeps_its_warning(tmp_path: Path) -> None:
    source = PCAPS[0].read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(source[: len(source) - 7])
    serial = CaptureRun(cut, hash_input=False)
    serial_lines = "".join(event_json_line(e) for e in serial.events())
    sharded = ShardedRun(cut, 2, None)
    assert "".join(sharded.lines()) == serial_lines
    assert sharded.summary.truncated_at == serial.summary.truncated_at is not None
    assert sharded.summary.warnings == serial.summary.warnings


def test_not_a_capture_fails_before_any_fork(tmp_path: Path) -> None:
    bogus = tmp_path / "x.pcap"
    bogus.write_bytes(b"hello, not a capture" * 10)
    with pytest.raises(InputError, match="not a pcap or pcapng file"):
        list(ShardedRun(bogus, 2, None).lines())


def test_a_failing_shard_is_an_error_not_a_short_output(
    mixed_capture: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = ShardPass.batches

    def fail_in_shard_one(self: ShardPass) -> Iterator[tuple[int, list[tuple[object, str]]]]:
        if self.shard == 1:
            raise ValueError("boom")
        yield from original(self)  # type: ignore[misc]

    monkeypatch.setattr(ShardPass, "batches", fail_in_shard_one)  # inherited by the fork
    with pytest.raises(RuntimeError, match="shard failed: ValueError: boom"):
        list(ShardedRun(mixed_capture, 2, None).lines())


@pytest.mark.parametrize("types", [None, frozenset({"dns", "connection"})])
def test_one_pass_lines_equal_encoded_events(mixed_capture: Path, types: frozenset[str]) -> None:
    # CaptureRun.lines encodes inside the dissectors' callback; events() + encode is the oracle.
    run = CaptureRun(mixed_capture, hash_input=False)
    assert "".join(run.lines(types)) == serial_text(mixed_capture, types)
    assert run.summary.packets == 30000


def test_full_path_shards_equal_the_full_serial_pass(mixed_capture: Path) -> None:
    """--no-prefilter with --workers: every shard reads every flow in full too."""
    serial = "".join(
        event_json_line(e)
        for e in CaptureRun(mixed_capture, hash_input=False, prefilter=False).events()
    )
    assert '"bypassed_after"' not in serial
    assert "".join(ShardedRun(mixed_capture, 2, None, prefilter=False).lines()) == serial
