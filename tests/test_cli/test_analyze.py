"""``dotaudit analyze`` as a user drives it (dotaudit/cli/analyze.py): subprocess runs,
exit codes, the report formats, policy and evidence."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests import pcapgen
from tests.conftest import ROOT, corpus_path
from tests.test_cli.command import SCHEMA, dotaudit, jsonl


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = dotaudit("analyze", str(tmp_path / "absent.pcap"))
    assert result.returncode == 2
    assert "absent.pcap" in result.stderr


def test_analyze_exit_codes_follow_fail_on(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["leak.example"])
    high = dotaudit("analyze", str(capture), "-q")
    assert high.returncode == 1  # a plaintext leak is high
    relaxed = dotaudit("analyze", str(capture), "-q", "--fail-on", "none")
    assert relaxed.returncode == 0
    report = json.loads(relaxed.stdout)
    assert report["findings"][0]["id"] == "DA-LEAK-001"


def test_analyze_json_report_validates_against_schema(tmp_path: Path) -> None:
    capture = pcapgen.fallback_capture(tmp_path / "f.pcap", "drop")
    out = tmp_path / "report.json"
    result = dotaudit("analyze", str(capture), "-o", str(out))
    assert result.returncode == 1
    report = json.loads(out.read_text())
    jsonschema.validate(report, SCHEMA)
    assert "findings:" in result.stderr, "the text summary goes to stderr"
    fallback = report["fallback_events"]
    assert len(fallback) == 1
    assert fallback[0]["failure"] == "syn_unanswered"
    assert fallback[0]["qnames"] == ["fallback.example"]
    assert fallback[0]["delay_s"] == pytest.approx(2.0, abs=0.01)


def test_corpus_report_validates_against_schema(tmp_path: Path) -> None:
    """Oracle: the documented JSON Schema, on real public captures."""
    paths = [
        corpus_path("ndpi/dot-android10-private-dns/googledns_android10.pcap"),
        corpus_path("ndpi/dns-fragmented-tcp-udp/dns_fragmented.pcap"),
    ]
    result = dotaudit("analyze", *map(str, paths), "-q", "--format", "json", "--workers", "2")
    # MANIFEST: dns_fragmented.pcap holds plaintext DNS over UDP and TCP 53, which is
    # high (docs/findings.md, DA-LEAK-001/002): at the default --fail-on high, exit 1.
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""  # -q: no summary, and no error
    report = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA)
    assert [i["path"] for i in report["inputs"]] == [str(p) for p in paths]
    leaks = {f["id"] for f in report["findings"] if f["severity"] == "high"}
    assert leaks == {"DA-LEAK-001", "DA-LEAK-002"}


def test_workers_give_the_same_report_as_serial(tmp_path: Path) -> None:
    a = pcapgen.fallback_capture(tmp_path / "a.pcap", "icmp")
    b = pcapgen.plaintext_capture(tmp_path / "b.pcap", ["x.example", "y.example"])
    serial = json.loads(dotaudit("analyze", str(a), str(b), "-q", "--workers", "1").stdout)
    parallel = json.loads(dotaudit("analyze", str(a), str(b), "-q", "--workers", "2").stdout)
    for report in (serial, parallel):
        report.pop("generated_at")
    assert serial == parallel


def test_jsonl_format_is_one_finding_per_line(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example"])
    out = tmp_path / "f.jsonl"
    assert dotaudit("analyze", str(capture), "-q", "-o", str(out)).returncode == 1  # a high leak
    lines = jsonl(out.read_text())
    assert lines and all("id" in line and "severity" in line for line in lines)


def test_unknown_output_extension_needs_format(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example"])
    result = dotaudit("analyze", str(capture), "-o", str(tmp_path / "report.xyz"))
    assert result.returncode == 2
    assert "--format" in result.stderr


def test_bad_policy_is_a_usage_error(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example"])
    policy = tmp_path / "policy.toml"
    policy.write_text('internal_resolvers = ["not-an-ip"]\n')
    result = dotaudit("analyze", str(capture), "--policy", str(policy))
    assert result.returncode == 2
    assert "not-an-ip" in result.stderr


def test_policy_internal_resolver_is_not_a_leak(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example"])
    policy = tmp_path / "policy.toml"
    policy.write_text(f'internal_resolvers = ["{pcapgen.RESOLVER}"]\n')
    result = dotaudit("analyze", str(capture), "-q", "--policy", str(policy))
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert not [f for f in report["findings"] if f["id"].startswith("DA-LEAK")]
    assert report["plaintext_dns"][0]["internal"] is True


def test_evidence_pcaps_hold_the_findings_frames(tmp_path: Path) -> None:
    capture = pcapgen.fallback_capture(tmp_path / "f.pcap", "reset")
    evidence = tmp_path / "evidence"
    out = tmp_path / "r.json"
    result = dotaudit("analyze", str(capture), "--evidence", str(evidence), "-o", str(out), "-q")
    assert result.returncode == 1, result.stderr
    report = json.loads(out.read_text())
    files = sorted(evidence.glob("*.pcap"))
    assert files
    fallback_index = next(
        i for i, f in enumerate(report["findings"], 1) if f["id"] == "DA-FALLBACK-001"
    )
    fallback_file = evidence / f"{fallback_index:03d}-DA-FALLBACK-001.pcap"
    events = jsonl(dotaudit("events", str(fallback_file)).stdout)
    assert {r["frame"] for r in events if r["type"] == "dns"}, "the fallback query is in it"


LOOPBACK_POLICY = ROOT / "pcaps" / "loopback-policy.toml"


def fallbacks(*argv: str) -> list[object]:
    result = dotaudit("analyze", str(ROOT / "pcaps" / "04-fallback.pcap"), "-q",
                      "--fail-on", "none", *argv)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [f["id"] for f in json.loads(result.stdout)["findings"] if f["id"] == "DA-FALLBACK-001"]


def test_loopback_samples_need_the_shipped_policy() -> None:
    """Oracle: pcaps/README.md, 04-fallback: three DoT attempts, each followed by UDP 53."""
    assert fallbacks() == []  # loopback DNS is a local stub by default
    assert fallbacks("--policy", str(LOOPBACK_POLICY)) == ["DA-FALLBACK-001"] * 3


def test_demo_and_docs_use_the_loopback_policy() -> None:
    makefile = (ROOT / "Makefile").read_text()
    demo = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "pcaps/0[1-8]-*.pcap --policy pcaps/loopback-policy.toml" in demo
    for doc in ("README.md", "pcaps/README.md"):
        assert "--policy pcaps/loopback-policy.toml" in (ROOT / doc).read_text(), doc


def test_readme_says_how_to_run_the_installed_command() -> None:
    """`make demo` leaves dotaudit in .venv, not on PATH: the README must say so, and its
    `.venv/bin/dotaudit` lines must be commands that parse, on files that exist."""
    from dotaudit.cli import build_parser

    readme = (ROOT / "README.md").read_text()
    assert ". .venv/bin/activate" in readme
    commands = [line.split("#")[0].split() for line in readme.splitlines()
                if line.startswith(".venv/bin/dotaudit ")]  # fmt: skip
    assert len(commands) >= 2
    for words in commands:
        _, unknown = build_parser().parse_known_args(words[1:])
        assert not unknown, words
        for word in words:
            if word.startswith("pcaps/"):
                assert (ROOT / word).is_file(), word


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            'treat_loopback_as_network = "false"',
            "treat_loopback_as_network: expected true or false, got a string",
        ),
        (
            'internal_resolvers = "10.0.0.53"',
            "internal_resolvers: expected a list of IP addresses, got a string",
        ),
        (
            '[[approved_dot]]\naddress = "9.9.9.9"\npins = "abc"',
            "approved_dot[0].pins: expected a list of base64 SHA-256 SPKI pins, got a string",
        ),
    ],
)
def test_policy_type_errors_are_one_line_and_exit_2(tmp_path: Path, text: str, line: str) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example"])
    policy = tmp_path / "policy.toml"
    policy.write_text(text + "\n")
    result = dotaudit("analyze", str(capture), "--policy", str(policy))
    assert result.returncode == 2
    assert result.stderr == f"dotaudit: {policy}: {line}\n"
    assert result.stdout == ""
