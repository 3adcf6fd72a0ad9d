"""``dotaudit analyze`` as a user drives it (dotaudit/cli/analyze.py): subprocess runs,
exit codes, the report formats, policy and evidence."""

from __future__ import annotations

import json
import os
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


# -- "nothing found" never means "nothing read" ---------------------------------------------


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("link-105", "none of its 4 packets could be decoded (unknown_linktype 4)"),
        ("corrupt-first", "no packet read: corrupt record (captured length 10000000 exceeds "
                          "262144) at byte offset 24"),
        ("empty", "the capture holds no packets"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("fail_on", ["info", "none"])
def test_an_unreadable_input_exits_2_and_the_report_keeps_every_finding(
    tmp_path: Path, damage: str, reason: str, fail_on: str
) -> None:
    leak = pcapgen.plaintext_capture(tmp_path / "leak.pcap", ["leak.example"])
    bad = pcapgen.damaged_capture(tmp_path / "bad.pcap", damage)
    out = tmp_path / "r.json"
    result = dotaudit("analyze", str(leak), str(bad), "--fail-on", fail_on, "-o", str(out))
    assert result.returncode == 2, result.stderr  # even though the other input has findings
    assert result.stderr.splitlines()[-1] == f"dotaudit: {bad}: unreadable: {reason}"
    assert "Traceback" not in result.stderr
    report = json.loads(out.read_text())
    jsonschema.validate(report, SCHEMA)
    assert [f["id"] for f in report["findings"]] == ["DA-LEAK-001"]
    assert report["completeness"]["status"] == "unreadable"
    assert report["completeness"]["warnings"] == [f"{bad}: unreadable: {reason}"]
    statuses = [(i["path"], i["status"], i["status_reason"]) for i in report["inputs"]]
    assert statuses == [(str(leak), "complete", None), (str(bad), "unreadable", reason)]


def test_an_unreadable_input_counts_its_undecoded_packets(tmp_path: Path) -> None:
    bad = pcapgen.damaged_capture(tmp_path / "wifi.pcap", "link-105")
    result = dotaudit("analyze", str(bad), "-q", "--fail-on", "none")
    assert result.returncode == 2
    (entry,) = json.loads(result.stdout)["inputs"]
    assert (entry["packets"], entry["undecoded"]) == (4, {"unknown_linktype": 4})


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("cut", "cut short (record data cut) at byte offset 292; 3 packets read before"),
        ("corrupt-later", "corrupt record (captured length 10000000 exceeds 262144) at byte "
                          "offset 202; 2 packets read before"),
    ],
)  # fmt: skip
def test_a_partial_input_warns_and_strict_makes_it_an_error(
    tmp_path: Path, damage: str, reason: str
) -> None:
    cut = pcapgen.damaged_capture(tmp_path / "cut.pcap", damage)
    relaxed = dotaudit("analyze", str(cut), "-q", "--fail-on", "none")
    assert relaxed.returncode == 0, relaxed.stderr  # a warning: what was read is judged
    report = json.loads(relaxed.stdout)
    assert report["completeness"]["status"] == "partial"
    assert report["inputs"][0]["stopped_at"] == int(reason.split("byte offset ")[1].split(";")[0])
    assert [f["id"] for f in report["findings"]] == ["DA-LEAK-001"]  # from before the damage
    strict = dotaudit("analyze", str(cut), "-q", "--fail-on", "none", "--strict")
    assert strict.returncode == 2
    assert strict.stderr.splitlines()[-1] == f"dotaudit: {cut}: partial: {reason} (--strict)"
    assert json.loads(strict.stdout)["findings"] == report["findings"]  # still written


def test_a_capture_read_whole_is_complete(tmp_path: Path) -> None:
    leak = pcapgen.plaintext_capture(tmp_path / "leak.pcap", ["leak.example"])
    result = dotaudit("analyze", str(leak), "-q", "--strict", "--fail-on", "none")
    assert result.returncode == 0 and result.stderr == ""
    report = json.loads(result.stdout)
    assert report["completeness"] == {
        "status": "complete",
        "inputs": {"complete": 1, "partial": 0, "unreadable": 0, "skipped": 0},
        "warnings": [],
        "skipped": [],
    }
    assert report["inputs"][0]["undecoded"] == {}


def test_every_format_says_it_at_the_top(tmp_path: Path) -> None:
    bad = pcapgen.damaged_capture(tmp_path / "x<b>bad<i>.pcap", "link-105")
    leak = pcapgen.plaintext_capture(tmp_path / "leak.pcap", ["leak.example"])
    out = {fmt: tmp_path / f"r.{ext}" for fmt, ext in
           (("json", "json"), ("jsonl", "jsonl"), ("text", "txt"), ("html", "html"))}  # fmt: skip
    for path in out.values():
        result = dotaudit("analyze", str(leak), str(bad), "-q", "-o", str(path))
        assert result.returncode == 2, result.stderr
    warning = f"{bad}: unreadable: none of its 4 packets could be decoded (unknown_linktype 4)"
    assert list(json.loads(out["json"].read_text()))[4] == "completeness"
    first = jsonl(out["jsonl"].read_text())[0]
    assert (first["record"], first["path"], first["status"]) == ("input", str(bad), "unreadable")
    lines = out["text"].read_text().splitlines()
    assert lines[1].startswith("WARNING: incomplete audit: 1 unreadable of 2 inputs")
    assert lines[2] == f"WARNING: {warning}"
    body = out["html"].read_text()
    banner = body.index('<div class="incomplete" role="alert"')
    assert banner < body.index("<main>")  # in the header, above everything else
    assert "x&lt;b&gt;bad&lt;i&gt;.pcap" in body[banner:] and "<b>bad<i>" not in body
    assert "Incomplete audit: 1 unreadable of 2 inputs." in body


# -- no data lost, nothing counted twice ----------------------------------------------------


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
def test_o_naming_an_input_is_refused(tmp_path: Path, how: str) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "x.pcap", ["a.example"])
    before = capture.read_bytes()
    target = capture
    if how == "symlink":
        target = tmp_path / "link.pcap"
        target.symlink_to(capture)
    elif how == "hardlink":
        target = tmp_path / "hard.pcap"
        os.link(capture, target)
    result = dotaudit("analyze", str(capture), "--format", "json", "-o", str(target))
    assert result.returncode == 2
    assert result.stderr.startswith(f"dotaudit: {target}: is an input")
    assert len(result.stderr.splitlines()) == 1
    assert capture.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"x.pcap", target.name})


def test_evidence_is_never_read_back_as_input(tmp_path: Path) -> None:
    """``analyze . --evidence evidence`` then ``analyze .``: the evidence pcaps hold the
    findings' frames again, and reading them would count every finding twice."""
    folder = tmp_path / "captures"
    folder.mkdir()
    pcapgen.plaintext_capture(folder / "a.pcap", ["a.example", "b.example"])
    pcapgen.fallback_capture(folder / "f.pcap", "drop")
    first = dotaudit("analyze", str(folder), "--evidence", str(folder / "evidence"), "-q",
                     "--fail-on", "none")  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert len(list((folder / "evidence").glob("*.pcap"))) >= 2
    again = dotaudit("analyze", str(folder), "-q", "--fail-on", "none")
    assert again.returncode == 0, again.stderr
    before, after = json.loads(first.stdout), json.loads(again.stdout)
    assert len(after["findings"]) == len(before["findings"])
    assert after["completeness"]["skipped"] == [
        f"{folder / 'evidence'}: skipped: an evidence directory written by dotaudit "
        "(.dotaudit-evidence)"
    ]


def test_evidence_is_never_written_among_the_inputs(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "a.pcap", ["a.example"])
    result = dotaudit("analyze", str(capture), "--evidence", str(tmp_path), "-q")
    assert result.returncode == 2
    assert result.stderr == f"dotaudit: {tmp_path}: holds the input {capture} (--evidence " \
                            "needs its own directory)\n"  # fmt: skip
    assert not (tmp_path / ".dotaudit-evidence").exists()


@pytest.mark.parametrize("given", ["twice", "with-its-directory", "a-copy"])
def test_the_same_capture_given_twice_is_counted_once(tmp_path: Path, given: str) -> None:
    folder = tmp_path / "captures"
    folder.mkdir()
    capture = pcapgen.plaintext_capture(folder / "a.pcap", ["a.example", "b.example"])
    once = json.loads(dotaudit("analyze", str(capture), "-q", "--fail-on", "none").stdout)
    second = {"twice": capture, "with-its-directory": folder, "a-copy": tmp_path / "copy.pcap"}
    if given == "a-copy":
        second[given].write_bytes(capture.read_bytes())
    result = dotaudit("analyze", str(capture), str(second[given]), "-q", "--fail-on", "none")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["findings"]) == len(once["findings"]) == 1
    assert report["summary"]["packets"] == once["summary"]["packets"]
    skipped_path = tmp_path / "copy.pcap" if given == "a-copy" else capture
    reason = f"the same content as {capture}" if given == "a-copy" else "given twice"
    assert report["completeness"]["skipped"] == [f"{skipped_path}: skipped: {reason}"]


def test_a_capture_named_file_that_is_no_capture_is_listed(tmp_path: Path) -> None:
    folder = tmp_path / "captures"
    folder.mkdir()
    pcapgen.plaintext_capture(folder / "a.pcap", ["a.example"])
    (folder / "b.pcapng").write_text("an export that went wrong\n")
    (folder / "notes.txt").write_text("not named like a capture: not listed\n")
    result = dotaudit("analyze", str(folder), "-q", "--fail-on", "none")
    assert result.returncode == 0, result.stderr
    inputs = json.loads(result.stdout)["inputs"]
    assert [(Path(i["path"]).name, i["status"], i["status_reason"]) for i in inputs] == [
        ("a.pcap", "complete", None),
        ("b.pcapng", "skipped", "not a pcap or pcapng file"),
    ]


def test_only_skipped_files_is_an_error_naming_them(tmp_path: Path) -> None:
    (tmp_path / "b.pcap").write_text("not a capture\n")
    result = dotaudit("analyze", str(tmp_path), "-q")
    assert result.returncode == 2
    assert result.stderr == (
        f"dotaudit: no capture files found in {tmp_path}; skipped: {tmp_path / 'b.pcap'} "
        "(not a pcap or pcapng file)\n"
    )


def test_a_policy_of_wrong_types_is_one_line(tmp_path: Path) -> None:
    capture = pcapgen.plaintext_capture(tmp_path / "p.pcap", ["a.example"])
    for text in ("approved_dot = 5\n", "[severity]\nx = 1\n", "severity = 5\n",
                 "approved_dot = [\"9.9.9.9\"]\n"):  # fmt: skip
        policy = tmp_path / "policy.toml"
        policy.write_text(text)
        result = dotaudit("analyze", str(capture), "--policy", str(policy))
        assert result.returncode == 2, (text, result.stderr)
        assert result.stderr.startswith(f"dotaudit: {policy}: "), text
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


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
