"""The command line as a user drives it: subprocess runs, exit codes, stdout vs stderr."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests import pcapgen
from tests.conftest import ROOT, corpus_path

SCHEMA = json.loads((ROOT / "schema" / "report.schema.json").read_text())


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dotaudit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def jsonl(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line]


def test_not_a_capture_exits_2_naming_the_file(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.pcap"
    bogus.write_text("hello, this is not a capture\n")
    result = run("events", str(bogus))
    assert result.returncode == 2
    assert f"{bogus}: not a pcap or pcapng file" in result.stderr
    assert result.stdout == ""


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run("analyze", str(tmp_path / "absent.pcap"))
    assert result.returncode == 2
    assert "absent.pcap" in result.stderr


def test_events_jsonl_carries_the_common_fields(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example", "b.example"])
    result = run("events", str(capture))
    assert result.returncode == 0, result.stderr
    records = jsonl(result.stdout)
    dns = [r for r in records if r["type"] == "dns"]
    assert [r["qname"] for r in dns if r["qr"] == "query"] == ["a.example", "b.example"]
    for record in records:
        for key in ("schema", "type", "file", "frame", "ts", "src", "sport", "dst", "dport"):
            assert key in record, (key, record)
        assert record["schema"] == "dotaudit.events/1"
    frames = [r["frame"] for r in dns]
    assert frames == sorted(frames), "records must come in capture order"


def test_events_type_filter_and_output_file(tmp_path: Path) -> None:
    capture = pcapgen.fallback_capture(tmp_path / "f.pcap", "reset")
    out = tmp_path / "out" / "events.jsonl"
    result = run("events", str(capture), "--type", "connection", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    records = jsonl(out.read_text())
    assert records and {r["type"] for r in records} == {"connection"}
    outcomes = {r["dport"]: r["outcome"] for r in records}
    assert outcomes[853] == "refused"
    assert not list(out.parent.glob(".*tmp")), "no temporary file left behind"


def test_unknown_type_is_a_usage_error(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example"])
    result = run("events", str(capture), "--type", "dns,bogus")
    assert result.returncode == 2
    assert "bogus" in result.stderr


def test_truncated_capture_warns_with_offset_and_strict_fails(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example", "b.example"])
    data = capture.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 10])
    result = run("events", str(cut))
    assert result.returncode == 0
    assert "offset" in result.stderr and str(cut) in result.stderr
    names = [r["qname"] for r in jsonl(result.stdout) if r["type"] == "dns"]
    assert "a.example" in names  # facts before the cut survive
    strict = run("events", "--strict", str(cut))
    assert strict.returncode == 2


def test_gzip_and_directory_inputs_are_found_by_magic(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["gz.example"])
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "capture.bin").write_bytes(gzip.compress(capture.read_bytes()))
    (folder / "README.md").write_text("not a capture")
    result = run("events", str(folder), "--type", "dns")
    assert result.returncode == 0, result.stderr
    assert {r["qname"] for r in jsonl(result.stdout)} == {"gz.example"}


def test_analyze_exit_codes_follow_fail_on(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["leak.example"])
    high = run("analyze", str(capture), "-q")
    assert high.returncode == 1  # a plaintext leak is high
    relaxed = run("analyze", str(capture), "-q", "--fail-on", "none")
    assert relaxed.returncode == 0
    report = json.loads(relaxed.stdout)
    assert report["findings"][0]["id"] == "DA-LEAK-001"


def test_analyze_json_report_validates_against_schema(tmp_path: Path) -> None:
    capture = pcapgen.fallback_capture(tmp_path / "f.pcap", "drop")
    out = tmp_path / "report.json"
    result = run("analyze", str(capture), "-o", str(out))
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
    result = run("analyze", *map(str, paths), "-q", "--format", "json", "--workers", "2")
    report = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA)
    assert [i["path"] for i in report["inputs"]] == [str(p) for p in paths]


def test_workers_give_the_same_report_as_serial(tmp_path: Path) -> None:
    a = pcapgen.fallback_capture(tmp_path / "a.pcap", "icmp")
    b = pcapgen.plaintext_capture(tmp_path / "b.pcap", ["x.example", "y.example"])
    serial = json.loads(run("analyze", str(a), str(b), "-q", "--workers", "1").stdout)
    parallel = json.loads(run("analyze", str(a), str(b), "-q", "--workers", "2").stdout)
    for report in (serial, parallel):
        report.pop("generated_at")
    assert serial == parallel


def test_jsonl_format_is_one_finding_per_line(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example"])
    out = tmp_path / "f.jsonl"
    run("analyze", str(capture), "-q", "-o", str(out))
    lines = jsonl(out.read_text())
    assert lines and all("id" in line and "severity" in line for line in lines)


def test_unknown_output_extension_needs_format(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example"])
    result = run("analyze", str(capture), "-o", str(tmp_path / "report.xyz"))
    assert result.returncode == 2
    assert "--format" in result.stderr


def test_bad_policy_is_a_usage_error(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example"])
    policy = tmp_path / "policy.toml"
    policy.write_text('internal_resolvers = ["not-an-ip"]\n')
    result = run("analyze", str(capture), "--policy", str(policy))
    assert result.returncode == 2
    assert "not-an-ip" in result.stderr


def test_policy_internal_resolver_is_not_a_leak(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example"])
    policy = tmp_path / "policy.toml"
    policy.write_text(f'internal_resolvers = ["{pcapgen.RESOLVER}"]\n')
    result = run("analyze", str(capture), "-q", "--policy", str(policy))
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert not [f for f in report["findings"] if f["id"].startswith("DA-LEAK")]
    assert report["plaintext_dns"][0]["internal"] is True


def test_evidence_pcaps_hold_the_findings_frames(tmp_path: Path) -> None:
    capture = pcapgen.fallback_capture(tmp_path / "f.pcap", "reset")
    evidence = tmp_path / "evidence"
    out = tmp_path / "r.json"
    result = run("analyze", str(capture), "--evidence", str(evidence), "-o", str(out), "-q")
    assert result.returncode == 1, result.stderr
    report = json.loads(out.read_text())
    files = sorted(evidence.glob("*.pcap"))
    assert files
    fallback_index = next(
        i for i, f in enumerate(report["findings"], 1) if f["id"] == "DA-FALLBACK-001"
    )
    fallback_file = evidence / f"{fallback_index:03d}-DA-FALLBACK-001.pcap"
    events = jsonl(run("events", str(fallback_file)).stdout)
    assert {r["frame"] for r in events if r["type"] == "dns"}, "the fallback query is in it"


def test_quiet_gc_still_bounds_garbage_cycles() -> None:
    """events/analyze raise the GC threshold; cyclic garbage must still be collected."""
    import gc

    from dotaudit.cli import _quiet_gc

    saved = gc.get_threshold()
    try:
        _quiet_gc()
        assert gc.get_threshold()[0] > saved[0]
        gc.collect()
        baseline = len(gc.get_objects())
        peak = 0
        for _ in range(300_000):
            cycle: list[object] = []
            cycle.append(cycle)
            del cycle
            peak = max(peak, gc.get_count()[0])
        assert len(gc.get_objects()) < baseline + 60_000
        assert peak <= 50_001
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The command line in this process (so that mutation runs see which code it reaches)."""
    from dotaudit.cli import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_analyze_exit_status_at_and_around_the_highest_severity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A plaintext leak to a public resolver is high (docs/findings.md, DA-LEAK-001).
    capture = pcapgen.plaintext_capture(tmp_path / "leak.pcap", ["leak.example"])
    out = tmp_path / "r.json"
    for fail_on, expected in (("info", 1), ("medium", 1), ("high", 1), ("none", 0)):
        code, _, _ = _main(["analyze", str(capture), "-q", "--fail-on", fail_on, "-o", str(out)],
                           capsys)  # fmt: skip
        assert code == expected, fail_on
    report = json.loads(out.read_text())
    assert max(f["severity"] for f in report["findings"]) == "high"


def test_analyze_without_findings_exits_zero_at_every_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = pcapgen.write(tmp_path / "empty.pcap", [])
    for fail_on in ("info", "low", "high"):
        code, out, _ = _main(["analyze", str(empty), "-q", "--fail-on", fail_on], capsys)
        assert code == 0, fail_on
        assert json.loads(out)["findings"] == []


def test_analyze_writes_the_report_to_stdout_or_the_file_and_the_summary_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "leak.pcap", ["leak.example"])
    code, out, err = _main(["analyze", str(capture), "--fail-on", "none"], capsys)
    assert code == 0 and json.loads(out)["kind"] == "analyze"
    assert "DA-LEAK-001" in err  # the text summary
    target = tmp_path / "r.json"
    code, out, err = _main(
        ["analyze", str(capture), "--fail-on", "none", "-o", str(target)], capsys
    )
    assert out == "" and json.loads(target.read_text())["kind"] == "analyze"
    assert "DA-LEAK-001" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leak.pcap", "r.json"]  # no temp file
    code, out, err = _main(["analyze", str(capture), "--fail-on", "none", "-q"], capsys)
    assert err == "" and json.loads(out)
    code, out, err = _main(
        ["analyze", str(capture), "--fail-on", "none", "--format", "text"], capsys
    )
    assert "DA-LEAK-001" in out and err == ""  # the text report is not printed twice


def _probe_argv(port: int, *extra: str) -> list[str]:
    return ["probe", f"127.0.0.1:{port}", "-q", "--timeout", "1", *extra]


def test_probe_of_a_closed_port_exits_by_the_verdict(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = _probe_argv(port, "--checks", "reach.853")
    code, out, _ = _main([*argv, "--fail-on", "high"], capsys)
    assert code == 1
    (target,) = json.loads(out)["targets"]
    assert target["verdict"]["strict"] == "refuse"
    code, _, _ = _main([*argv, "--fail-on", "none"], capsys)
    assert code == 0
    # Opportunistic clients get no DNS at all here either: high in that mode too.
    code, _, _ = _main([*argv, "--fail-on", "high", "--mode", "opportunistic"], capsys)
    assert code == 1


def test_probe_exit_status_counts_check_severity_at_or_above_the_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import datetime as dt

    from tests.test_probe.certgen import NOW, ca, issue
    from tests.test_probe.test_checks.cert_server import CertServer

    root = ca()
    ca_file = tmp_path / "root.pem"
    ca_file.write_bytes(root.pem())
    # Valid and named, but ten days left: cert.expiry warns, which weighs low.
    leaf = issue(issuer=root, ips=("127.0.0.1",), not_after=NOW + dt.timedelta(days=10))
    (tmp_path / "srv").mkdir()
    with CertServer(tmp_path / "srv", leaf) as server:
        argv = _probe_argv(
            server.port, "--ca", str(ca_file), "--checks", "cert.chain,cert.name,cert.expiry"
        )
        expected = {"info": 1, "low": 1, "medium": 0, "high": 0, "none": 0}
        for fail_on, status in expected.items():
            code, out, _ = _main([*argv, "--fail-on", fail_on], capsys)
            assert code == status, fail_on
        (target,) = json.loads(out)["targets"]
        assert target["verdict"]["strict"] == "accept"
        checks = {c["id"]: c["status"] for c in target["checks"]}
        assert checks["cert.expiry"] == "warn" and checks["cert.name"] == "pass"


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:  # free a moment ago: nothing listens there now
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_bulk_probe_exit_status_follows_fail_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text(f"127.0.0.1:{_closed_port()}\n127.0.0.1:{_closed_port()}\n")
    argv = ["probe", "--targets", str(targets), "-q", "--timeout", "1", "--checks", "reach.853"]
    code, out, _ = _main([*argv, "--fail-on", "high"], capsys)
    assert code == 1
    assert [t["verdict"]["strict"] for t in json.loads(out)["targets"]] == ["refuse", "refuse"]
    code, _, _ = _main([*argv, "--fail-on", "none"], capsys)
    assert code == 0


def test_probe_usage_errors_exit_two_naming_the_problem(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = _main(["probe", "127.0.0.1", "--checks", "no.such.check"], capsys)
    assert code == 2 and err.startswith("dotaudit: --checks: ")
    code, _, err = _main(["probe", "--targets", "/nonexistent/targets.txt"], capsys)
    assert code == 2 and "/nonexistent/targets.txt" in err


def test_nagios_usage_error_is_an_unknown_line_with_exit_three(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Monitoring-plugin guidelines: state UNKNOWN is exit code 3, with a one-line reason.
    code, out, _ = _main(["probe", "--nagios", "not a target"], capsys)
    assert code == 3 and out.startswith("DOT UNKNOWN - target ")
    code, out, _ = _main(["probe", "--nagios", "--targets", "/nonexistent/list"], capsys)
    assert code == 3 and out.startswith("DOT UNKNOWN - --targets: /nonexistent/list")
    code, out, _ = _main(["probe", "--nagios", "127.0.0.1", "127.0.0.2"], capsys)
    assert (code, out) == (3, "DOT UNKNOWN - --nagios takes exactly one target\n")


def test_probe_report_goes_to_the_output_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "probe.json"
    argv = _probe_argv(_closed_port(), "--checks", "reach.853", "--fail-on", "none")
    code, out, err = _main([*argv, "-o", str(out_file)], capsys)
    assert (code, out, err) == (0, "", "")
    assert json.loads(out_file.read_text())["kind"] == "probe"
    code, out, err = _main([a for a in argv if a != "-q"], capsys)
    assert code == 0 and json.loads(out)["kind"] == "probe"
    assert "refuse" in err  # the per-target summary lines


class _Terminal:
    """stderr as a terminal: a real pseudo-terminal, whose output the test reads back."""

    def __init__(self) -> None:
        import os

        self.master, slave = os.openpty()
        self.stream = open(slave, "w", encoding="utf-8")  # noqa: SIM115 - closed below

    def read(self) -> str:
        import os
        import select

        chunks = []
        while select.select([self.master], [], [], 0.2)[0]:
            chunks.append(os.read(self.master, 65536))
        return b"".join(chunks).decode()

    def close(self) -> None:
        import os

        self.stream.close()
        os.close(self.master)


@pytest.mark.parametrize("bulk", [False, True])
def test_probe_progress_bar_only_for_several_targets_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bulk: bool
) -> None:
    from dotaudit.cli import main

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal.stream)
    monkeypatch.setattr(sys, "stdout", open(tmp_path / "out.json", "w"))  # noqa: SIM115
    try:

        def probe(count: int) -> str:
            targets = [f"127.0.0.1:{_closed_port()}" for _ in range(count)]
            if bulk:
                listing = tmp_path / "targets.txt"
                listing.write_text("".join(t + "\n" for t in targets))
                targets = ["--targets", str(listing)]
            argv = ["probe", *targets, "-q", "--timeout", "1", "--checks", "reach.853"]
            assert main([*argv, "--fail-on", "none", "-o", str(tmp_path / "r.json")]) == 0
            terminal.stream.flush()
            return terminal.read()

        assert "probing" not in probe(1)
        shown = probe(2)
        assert "probing" in shown and "100%" in shown
        assert shown.endswith("\r" + " " * 80 + "\r")  # the bar is cleared at the end
    finally:
        sys.stdout.close()
        terminal.close()
