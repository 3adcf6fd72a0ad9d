"""The analyze report's input summary: packets per encapsulation, non-IP frames and IP
protocols not read are counted per input (absent when there is nothing to count), and
facts inside tunnels are judged like plain ones. Oracle for the shape: the documented
JSON Schema; for the counts, the frames the captures were built from."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import jsonschema
import pytest

from dotaudit.detect.base import Context
from dotaudit.errors import InputError
from dotaudit.model.evidence import EVIDENCE_MARKER
from dotaudit.pipeline import analyze, select_inputs
from tests import pcapgen
from tests.conftest import ROOT
from tests.lab import encap
from tests.lab.tunnels import read_pcap
from tests.test_capture.capwrite import pcap
from tests.test_capture.test_decode_tunnels import A, B, inner_eth, over_ip

SCHEMA = json.loads((ROOT / "schema" / "report.schema.json").read_text())
TUNNELS = ROOT / "tests" / "data" / "tunnels"


def test_tunnel_counts_in_the_input_summary(tmp_path: Path) -> None:
    odd = tmp_path / "odd.pcap"
    odd.write_bytes(
        pcap(
            [
                (1.0, encap.ethernet(bytes(28), 0x0806)),  # ARP
                (1.1, encap.ethernet(bytes(28), 0x0806)),
                (1.2, over_ip(bytes(24), 2)),  # IGMP
                (1.3, over_ip(bytes(24), 50)),  # ESP
                (1.4, encap.ethernet(bytes(46), 0x88E5)),  # MACsec: not decoded
                (1.5, over_ip(encap.gre(inner_eth(), encap.ETH_TEB, key=3), 47)),
            ]
        )
    )
    plain = TUNNELS.parent.parent.parent / "pcaps" / "01-kdig-strict-dot.pcap"
    paths = [TUNNELS / "pppoe-qinq.pcap", odd, plain]
    report = analyze(paths, Context()).to_dict()
    jsonschema.validate(report, SCHEMA)
    pppoe, mixed, untouched = report["inputs"]
    # The capture's PPPoE session frames, two VLAN tags in: ethertype 0x8864 at byte 20.
    sessions = sum(f[20:22] == b"\x88\x64" for _, f in read_pcap(TUNNELS / "pppoe-qinq.pcap"))
    assert sessions > 40
    assert pppoe["encapsulations"] == {"pppoe": sessions}
    assert pppoe["not_ip"] == {"pppoe-discovery": 1, "ppp-lcp": 1}
    assert "other_ip" not in pppoe
    assert mixed["encapsulations"] == {"gre": 1}
    assert mixed["not_ip"] == {"arp": 2}
    assert mixed["other_ip"] == {"esp": 1, "igmp": 1}
    assert mixed["anomalies"] == 1
    assert report["anomalies"]["counts"]["encapsulation_not_decoded"] == 1
    assert not {"encapsulations", "not_ip", "other_ip"} & set(untouched)
    # The DNS inside the PPPoE session (IPv4 and IPv6) and inside GRE is judged like any.
    leaks = [f for f in report["findings"] if f["id"].startswith("DA-LEAK")]
    assert {f["client"] for f in leaks} == {"10.42.0.1", "fd42::1", "10.0.0.1"}
    assert report["plaintext_dns"] and report["dot_sessions"]


def test_nested_layers_count_once_each(tmp_path: Path) -> None:
    path = tmp_path / "nested.pcap"
    inner = over_ip(encap.gre(inner_eth(), encap.ETH_TEB), 47, "198.51.100.1", "198.51.100.2")
    path.write_bytes(pcap([(1.0, over_ip(encap.gre(inner, encap.ETH_TEB, key=1), 47, A, B))]))
    [summary] = analyze([path], Context()).to_dict()["inputs"]
    assert summary["encapsulations"] == {"gre": 2}


# -- which files a run reads ---------------------------------------------------------------


def test_a_directory_scan_reads_each_capture_once_and_lists_what_it_skips(
    tmp_path: Path,
) -> None:
    captures = tmp_path / "captures"
    (captures / "sub").mkdir(parents=True)
    (captures / "evidence").mkdir()
    a = pcapgen.plaintext_capture(captures / "a.pcap", ["a.example"])
    b = pcapgen.plaintext_capture(captures / "sub" / "b", ["b.example"])  # found by magic
    (captures / "sub" / "copy.pcap").write_bytes(a.read_bytes())
    (captures / "notes.pcap").write_text("not a capture")
    (captures / "logs.gz").write_bytes(gzip.compress(b"log lines"))
    (captures / "README").write_text("ignored without a word")
    (captures / "evidence" / EVIDENCE_MARKER).write_text("")
    (captures / "evidence" / "001-DA-LEAK-001.pcap").write_bytes(a.read_bytes())
    selection = select_inputs([str(captures), str(a)])
    assert selection.paths == [a, b]
    skipped = {
        Path(item.path).relative_to(captures).as_posix(): item.skipped for item in selection.skipped
    }
    assert skipped == {
        "evidence": "an evidence directory written by dotaudit (.dotaudit-evidence)",
        "notes.pcap": "not a pcap or pcapng file",
        "logs.gz": "not a pcap or pcapng file",
        "sub/copy.pcap": f"the same content as {a}",
        "a.pcap": "given twice",
    }
    assert all(item.completeness().status == "skipped" for item in selection.skipped)
    assert set(selection.named) >= {a, b, captures / "notes.pcap"}
    assert "README" not in {p.name for p in selection.named}


def test_an_evidence_directory_named_itself_is_read(tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / EVIDENCE_MARKER).write_text("")
    pcap_ = pcapgen.plaintext_capture(evidence / "001-DA-LEAK-001.pcap", ["x.example"])
    assert select_inputs([str(evidence)]).paths == [pcap_]


def test_a_named_file_that_is_no_capture_is_an_error_not_a_skip(tmp_path: Path) -> None:
    """Skipping is for what a directory scan finds; a file named on the command line
    that cannot be read is the user's error (exit 2 when it is read)."""
    notes = tmp_path / "notes.pcap"
    notes.write_text("not a capture")
    assert select_inputs([str(notes)]).paths == [notes]
    with pytest.raises(InputError, match="no such file or directory"):
        select_inputs([str(tmp_path / "absent.pcap")])


def test_analyze_counts_a_capture_and_its_copy_once(tmp_path: Path) -> None:
    a = pcapgen.plaintext_capture(tmp_path / "a.pcap", ["leak.example"])
    (tmp_path / "b.pcap").write_bytes(a.read_bytes())
    selection = select_inputs([str(tmp_path), str(a)])
    report = analyze(selection.paths, Context(), skipped=selection.skipped)
    assert len(report.findings) == 1
    assert [(i["path"], i["status"]) for i in report.inputs] == [
        (str(a), "complete"),
        (str(a), "skipped"),  # given twice (in the directory, then by name)
        (str(tmp_path / "b.pcap"), "skipped"),  # the same content
    ]
    jsonschema.validate(report.to_dict(), SCHEMA)
