"""Sharded ``dotaudit events``: N processes, each dissecting a share of the flows, must write
exactly what one process writes. Oracle: the serial pass (CaptureRun + event_json_line)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dotaudit.capture.shard import shard_of
from dotaudit.errors import InputError
from dotaudit.model.events import event_json_line
from dotaudit.pipeline import CaptureRun
from dotaudit.shards import ShardedRun, ShardPass
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


@pytest.fixture(scope="module")
def mixed_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The benchmark's mix (bulk TLS, QUIC, DNS over UDP/TCP, DoT, mDNS, IPv6, VLAN),
    long enough for flows to expire in sweeps while others run."""
    out = tmp_path_factory.mktemp("mixed") / "mixed.pcap"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gen_capture.py"), "--packets", "30000",
         "-o", str(out)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return out


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


def test_summary_matches_one_pass(mixed_capture: Path) -> None:
    serial = CaptureRun(mixed_capture, hash_input=False)
    for _ in serial.events():
        pass
    sharded = ShardedRun(mixed_capture, 2, None)
    for _ in sharded.lines():
        pass
    one, many = serial.summary.to_dict(), sharded.summary.to_dict()
    assert many == one


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


@pytest.mark.parametrize("shards", [2, 3, 4])
def test_shard_of_is_symmetric_and_in_range(shards: int) -> None:
    seen = set()
    client, server = bytes([192, 0, 2, 10]), bytes([198, 51, 100, 53])
    for a in range(0, 65536, 97):
        for b in (53, 443, 853, 5353, a ^ 0x55):
            owner = shard_of(client, a, server, b, shards)
            assert owner == shard_of(server, b, client, a, shards)
            assert 0 <= owner < shards
            seen.add(owner)
    assert seen == set(range(shards))


def test_same_port_flows_spread_by_address() -> None:
    # mDNS: 5353 at both ends, to 224.0.0.251 from many hosts.
    group = bytes([224, 0, 0, 251])
    owners = {shard_of(bytes([10, 0, 0, host]), 5353, group, 5353, 2) for host in range(1, 40)}
    assert owners == {0, 1}


def test_cli_workers_option(mixed_capture: Path, tmp_path: Path) -> None:
    outputs = []
    for workers in ("1", "2", "auto"):
        out = tmp_path / f"w{workers}.jsonl"
        done = subprocess.run(
            [sys.executable, "-m", "dotaudit", "events", "--workers", workers,
             str(mixed_capture), "-o", str(out)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    bad = subprocess.run(
        [sys.executable, "-m", "dotaudit", "events", "--workers", "0", str(mixed_capture)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "--workers" in bad.stderr


def test_cli_sharded_output_to_stdout_is_written_once(mixed_capture: Path) -> None:
    # Forked children must not flush the parent's buffered stdout a second time.
    one = subprocess.run(
        [sys.executable, "-m", "dotaudit", "events", "--workers", "1", str(mixed_capture)],
        capture_output=True, timeout=300,
    )  # fmt: skip
    two = subprocess.run(
        [sys.executable, "-m", "dotaudit", "events", "--workers", "2",
         str(mixed_capture), str(mixed_capture)],
        capture_output=True, timeout=300,
    )  # fmt: skip
    assert one.returncode == two.returncode == 0
    assert two.stdout == one.stdout * 2


@pytest.mark.parametrize("types", [None, frozenset({"dns", "connection"})])
def test_one_pass_lines_equal_encoded_events(mixed_capture: Path, types: frozenset[str]) -> None:
    # CaptureRun.lines encodes inside the dissectors' callback; events() + encode is the oracle.
    run = CaptureRun(mixed_capture, hash_input=False)
    assert "".join(run.lines(types)) == serial_text(mixed_capture, types)
    assert run.summary.packets == 30000


def test_ctrl_c_stops_every_shard_quietly(mixed_capture: Path, tmp_path: Path) -> None:
    """SIGINT reaches the whole process group: one 'interrupted' line, exit 130, no
    traceback from a child, no process left behind."""
    import signal
    import time

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # opened, never read: writes block
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dotaudit", "events", "--workers", "2",
             str(mixed_capture), "-o", str(fifo)],
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_children(proc.pid)) < 1:
            time.sleep(0.05)
        assert _children(proc.pid), "no shard process was started"
        time.sleep(0.5)  # let the pipe to the reader fill up
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        os.close(reader)
    assert proc.returncode == 130
    assert stderr == "dotaudit: interrupted\n"


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.extend(int(child) for child in f.read().split())
    except OSError:
        pass
    return found


def test_full_path_shards_equal_the_full_serial_pass(mixed_capture: Path) -> None:
    """--no-prefilter with --workers: every shard reads every flow in full too."""
    serial = "".join(
        event_json_line(e)
        for e in CaptureRun(mixed_capture, hash_input=False, prefilter=False).events()
    )
    assert '"bypassed_after"' not in serial
    assert "".join(ShardedRun(mixed_capture, 2, None, prefilter=False).lines()) == serial
