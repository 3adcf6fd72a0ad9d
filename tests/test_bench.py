"""The benchmark's capture generator and runner (bench/): valid output, no timing claims.

The generated pcap is read back here with an independent minimal parser; QUIC Initials are
checked against aioquic's Initial-key decryption (oracle: aioquic, RFC 9001).
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import ROOT

BENCH = ROOT / "bench"


def generate(tmp: Path, packets: int, *extra: str) -> Path:
    out = tmp / "cap.pcap"
    subprocess.run(
        [sys.executable, str(BENCH / "gen_capture.py"), "--packets", str(packets), "-o", str(out),
         *extra],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    return out


def frames(path: Path) -> list[bytes]:
    data = path.read_bytes()
    magic, _, _, _, _, _, linktype = struct.unpack("<IHHiIII", data[:24])
    assert magic == 0xA1B2C3D4 and linktype == 1
    out, off = [], 24
    while off < len(data):
        _, _, caplen, wirelen = struct.unpack("<IIII", data[off : off + 16])
        assert caplen == wirelen
        out.append(data[off + 16 : off + 16 + caplen])
        off += 16 + caplen
    assert off == len(data)
    return out


def classify(frame: bytes) -> tuple[str, dict[str, bool]]:
    """(kind, traits) from Ethernet/802.1Q/IP/port headers alone."""
    traits = {"vlan": False, "v6": False}
    ethertype, off = struct.unpack("!H", frame[12:14])[0], 14
    if ethertype == 0x8100:
        traits["vlan"] = True
        ethertype, off = struct.unpack("!H", frame[16:18])[0], 18
    if ethertype == 0x0806:
        return "other", traits
    if ethertype == 0x0800:
        ihl = (frame[off] & 0x0F) * 4
        proto, l4 = frame[off + 9], off + ihl
    else:
        assert ethertype == 0x86DD
        traits["v6"] = True
        proto, l4 = frame[off + 6], off + 40
    if proto not in (6, 17):
        return "other", traits
    sport, dport = struct.unpack("!HH", frame[l4 : l4 + 4])
    ports = {sport, dport}
    tcp = proto == 6
    if 443 in ports:
        return ("tls" if tcp else "quic"), traits
    if 853 in ports and tcp:
        return "dot", traits
    if 53 in ports:
        return ("dns_tcp" if tcp else "dns_udp"), traits
    if 5353 in ports and not tcp:
        return "mdns", traits
    return "other", traits


def test_requested_count_and_mix(tmp_path: Path) -> None:
    cap = generate(tmp_path, 6000, "--mix", "tls=50,dns_udp=30,mdns=20")
    got = frames(cap)
    assert len(got) == 6000
    kinds = Counter(classify(f)[0] for f in got)
    assert set(kinds) == {"tls", "dns_udp", "mdns"}
    for kind, share in (("tls", 0.5), ("dns_udp", 0.3), ("mdns", 0.2)):
        assert abs(kinds[kind] / 6000 - share) < 0.04, kinds


def test_default_mix_has_every_kind_ipv6_and_vlan(tmp_path: Path) -> None:
    got = frames(generate(tmp_path, 8000))
    assert len(got) == 8000
    kinds: Counter[str] = Counter()
    traits: Counter[str] = Counter()
    for f in got:
        kind, t = classify(f)
        kinds[kind] += 1
        traits.update(k for k, v in t.items() if v)
    assert set(kinds) == {"tls", "quic", "dns_udp", "dns_tcp", "dot", "mdns", "other"}
    assert kinds["tls"] + kinds["quic"] > 0.6 * len(got)  # mostly bulk 443
    assert traits["vlan"] > 0.03 * len(got)
    assert traits["v6"] > 0.1 * len(got)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", 1500, "--seed", "7").read_bytes()
    b = generate(tmp_path / "b", 1500, "--seed", "7").read_bytes()
    c = generate(tmp_path / "c", 1500, "--seed", "8").read_bytes()
    assert a == b
    assert a != c


def test_quic_initials_decrypt_with_aioquic(tmp_path: Path) -> None:
    crypto = pytest.importorskip("aioquic.quic.crypto")
    got = frames(generate(tmp_path, 4000, "--mix", "quic=1"))
    hellos = 0
    original_dcid: dict[bytes, bytes] = {}  # Initial keys stay those of the first DCID
    for frame in got:
        off = 18 if frame[12:14] == b"\x81\x00" else 14
        v4 = frame[off] >> 4 == 4
        source = frame[off + 12 : off + 16] if v4 else frame[off + 8 : off + 24]
        off += 20 if v4 else 40
        source += frame[off : off + 2]
        dport = struct.unpack("!H", frame[off + 2 : off + 4])[0]
        dgram = frame[off + 8 :]
        if dport != 443 or dgram[0] & 0xF0 != 0xC0:  # client long-header Initial only
            continue
        dcid = dgram[6 : 6 + dgram[5]]
        pos = 6 + len(dcid)
        pos += 1 + dgram[pos]  # SCID
        assert dgram[pos] == 0  # empty token
        pos += 1
        length = struct.unpack("!H", dgram[pos : pos + 2])[0] & 0x3FFF
        pos += 2
        pair = crypto.CryptoPair()
        pair.setup_initial(cid=original_dcid.setdefault(source, dcid), is_client=False, version=1)
        _, payload, _ = pair.decrypt_packet(dgram[: pos + length], pos, 0)
        if payload[0] == 0x06 and payload[1] == 0:  # CRYPTO at offset 0: the ClientHello
            assert payload[2] & 0xC0 == 0x40 and payload[4] == 1  # 2-byte length, type 1
            hellos += 1
    assert hellos >= 20


def _dotaudit_events_available() -> bool:
    exe = Path(sys.executable).parent / "dotaudit"
    if not exe.exists():
        return False
    done = subprocess.run([str(exe), "events", "--help"], capture_output=True, check=False)
    return done.returncode == 0


def test_run_end_to_end_prints_ratio(tmp_path: Path) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed (make debs)")
    if not _dotaudit_events_available():
        pytest.skip("`dotaudit events` not available yet")
    done = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--packets", "2000", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ratios = re.findall(r"RATIO dotaudit events / tshark packets/s: ([0-9.]+)x", done.stdout)
    assert len(ratios) == 4 and all(float(r) > 0 for r in ratios), done.stdout  # 2 mixes
    assert re.search(r"dotaudit events peak RSS [0-9.]+ MB at 200 packets", done.stdout)
    shares = re.findall(r"admitted: [0-9,]+ of ([0-9,]+) packets reach Python", done.stdout)
    assert shares == ["200", "2,000", "200", "2,000"], done.stdout
    assert "HEADLINE benchmark mix" in done.stdout and "HEADLINE bulk mix" in done.stdout
    assert "facts: DNS names" in done.stdout and "facts: SNIs" in done.stdout
    result = json.loads((tmp_path / "result.json").read_text())
    big = result["captures"][-1]
    assert big["packets"] == 2000 and big["capture"].endswith("bulk-2000.pcap")
    assert 0 < big["admitted"]["admitted"] <= 2000 and big["full_ratio"] > 0
    assert big["events"]["peak_rss_mb"] > 0 and big["tshark"]["peak_rss_mb"] > 0
    # Default: one process. --workers auto forks only for captures of 8 MiB or more.
    assert big["events"]["processes"] == 1 and big["events_parallel"]["processes"] == 1
    assert big["parallel_ratio"] > 0 and "with --workers auto: " in done.stdout
    assert big["facts"]["dns"]["tshark_count"] > 0


def test_bulk_mix_is_bulk_dominated(tmp_path: Path) -> None:
    """95% of the bulk mix's packets are HTTPS, QUIC and video (oracle: the independent
    classifier above, from headers alone)."""
    path = generate(tmp_path, 20000, "--mix", "bulk")
    kinds = Counter(classify(f)[0] for f in frames(path))
    bulk = kinds["tls"] + kinds["quic"]
    assert bulk >= 0.93 * 20000, kinds


def test_measure_charges_every_process_of_the_tree(tmp_path: Path) -> None:
    """A tool that forks workers must be charged for all of them (summed RSS)."""
    sys.path.insert(0, str(BENCH))
    try:
        import run as bench_run
    finally:
        sys.path.remove(str(BENCH))
    hold = "x = bytearray(80 << 20); import time; time.sleep(0.6)"
    parent = (
        "import subprocess, sys; "
        f"child = subprocess.Popen([sys.executable, '-c', {hold!r}]); "
        f"exec({hold!r}); child.wait()"
    )
    run = bench_run.measure("tree", [sys.executable, "-c", parent], None, tmp_path / "err")
    assert run.exit_code == 0
    assert run.processes >= 2
    assert run.rss_mb >= 150  # two processes holding 80 MiB each, not the bigger one alone
