"""``--redact`` through the real command line: the key file, the options, and the grep test
over every byte a redacted run writes (HTML, JSON, JSONL, text, stderr, evidence pcaps).

Oracle for the grep test: the unredacted report of the same capture names what must not
appear (client addresses and MACs from its machines and findings, every name redaction
masks, as text and, in pcaps, packed and in DNS wire format).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dotaudit.cli.redaction import NAME_LEVELS
from dotaudit.redact import NameLevel, RedactionConfig, RedactionKey
from dotaudit.redact.report import redactor_for
from tests.conftest import ROOT
from tests.test_cli.command import SCHEMA, dotaudit

OFFICE = ROOT / "pcaps" / "09-office.pcap"
FORMATS = ("html", "json", "jsonl", "txt")


def wire(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in name.split("."))


def secrets_of(report: dict[str, Any], key_file: Path) -> tuple[set[str], set[str], set[str]]:
    """Client addresses, MACs and masked names of an unredacted report."""
    addresses: set[str] = set()
    macs: set[str] = set()
    for row in report["machines"]:
        addresses.update(row["addresses"])
        macs.update(row["macs"])
    addresses.update(f["client"] for f in report["findings"] if f["client"])
    names: set[str] = set()
    for section in ("plaintext_dns", "local_names", "fallback_events"):
        for row in report[section]:
            names.update(row.get("qnames") or [])
    names.update(row["sni"] for row in report["sni_inventory"])
    names.update(row["sni"] for row in report["dot_sessions"] if row["sni"])
    from dotaudit.model.report import AuditReport

    config = RedactionConfig(key=RedactionKey(bytes.fromhex(key_file.read_text().strip())))
    redactor = redactor_for(AuditReport.from_dict(report), config)
    masked = {n for n in names if redactor.name(n) != n}
    return addresses, macs, masked


def leaks(data: bytes, addresses: set[str], macs: set[str], names: set[str]) -> list[str]:
    found = []
    for address in addresses:
        text = re.escape(address.encode())
        if re.search(rb"(?<![0-9a-f.:])" + text + rb"(?![0-9])", data):
            found.append(f"address {address}")
        if ipaddress.ip_address(address).packed in data:
            found.append(f"packed {address}")
    for mac in macs:
        if mac.encode() in data or bytes.fromhex(mac.replace(":", "")) in data:
            found.append(f"mac {mac}")
    for name in names:
        if name.encode() in data or wire(name) in data:
            found.append(f"name {name}")
    return found


def test_redact_passes_the_grep_test_over_every_byte_through_the_cli(tmp_path: Path) -> None:
    key = tmp_path / "secret.key"
    stderr = b""
    for fmt in FORMATS:
        extra = ["--evidence", str(tmp_path / "ev")] if fmt == "html" else []
        run = dotaudit(
            "analyze", str(OFFICE), "--redact", "--redact-key", str(key), "--fail-on", "none",
            "-o", str(tmp_path / f"out.{fmt}"), *extra,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        stderr += run.stderr.encode()
    # The key was made once, private, and only its fingerprint was shown.
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stderr.count(b"created redaction key") == 1
    fingerprint = RedactionKey(bytes.fromhex(key.read_text().strip())).fingerprint
    assert fingerprint.encode() in stderr
    assert key.read_text().strip().encode() not in stderr
    plain = dotaudit("analyze", str(OFFICE), "-q", "--fail-on", "none")
    addresses, macs, names = secrets_of(json.loads(plain.stdout), key)
    assert len(addresses) == 11 and len(macs) == 9  # eight clients' and the router's
    assert {"secret.lab.test", "fileserver.corp.example", "dns.test"} <= names
    files = [tmp_path / f"out.{fmt}" for fmt in FORMATS] + sorted((tmp_path / "ev").iterdir())
    assert len(files) > len(FORMATS) + 20  # every finding with frames has a pcap
    for path in files:
        assert leaks(path.read_bytes(), addresses, macs, names) == [], path.name
    assert leaks(stderr, addresses, macs, names) == []
    # And the redacted report is still the report: eight machines, the same groups.
    report = json.loads((tmp_path / "out.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["summary"]["machines"] == 8 and report["fix_first"]["machines"] == 8
    assert report["redaction"]["key_fingerprint"] == fingerprint
    html = (tmp_path / "out.html").read_text()
    assert "Redacted report" in html and "8 machines (9 addresses)" in html
    # The banner says what became of the evidence payloads that could not be rewritten.
    zeroed = re.search(r"TLS record bodies zeroed: (\d+)", html)
    assert zeroed is not None and int(zeroed.group(1)) > 0, html[:4000]
    assert "lengths kept" in html
    assert (
        json.loads(plain.stdout)["fix_first"]["groups"][0]["sentence"]
        == (report["fix_first"]["groups"][0]["sentence"])
    )


def test_pseudonyms_are_stable_with_one_key_and_differ_with_another(tmp_path: Path) -> None:
    def clients(key: str) -> list[str]:
        run = dotaudit("analyze", str(OFFICE), "-q", "--fail-on", "none", "--redact",
                       "--redact-key", str(tmp_path / key))  # fmt: skip
        assert run.returncode == 0, run.stderr
        return [f["client"] for f in json.loads(run.stdout)["findings"]]

    first, again, other = clients("a.key"), clients("a.key"), clients("b.key")
    assert first == again and first != other
    assert len(set(first)) == len(set(other))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--redact"], "--redact needs --redact-key FILE"),
        (["--redact-key", "k"], "--redact-key only with --redact"),
        (["--redact-names", "all"], "--redact-names only with --redact"),
        (["--redact-resolvers"], "--redact-resolvers only with --redact"),
    ],
)
def test_redaction_options_need_each_other(tmp_path: Path, args: list[str], message: str) -> None:
    run = dotaudit("analyze", str(OFFICE), "-q", *args, cwd=tmp_path)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr == f"dotaudit: {message}" + run.stderr.split(message, 1)[1]
    assert message in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "k").exists()


def test_an_unsafe_key_file_is_refused_before_any_work(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_text("00" * 32 + "\n")
    os.chmod(key, 0o644)
    run = dotaudit("analyze", str(OFFICE), "--redact", "--redact-key", str(key), "-o",
                   str(tmp_path / "out.json"))  # fmt: skip
    assert run.returncode == 2 and run.stderr.startswith("dotaudit: ")
    assert "chmod 600" in run.stderr and not (tmp_path / "out.json").exists()


def test_the_names_level_choices_are_the_engines() -> None:
    assert tuple(level.value for level in NameLevel) == NAME_LEVELS


def test_names_none_keeps_names_and_all_tokenises_them(tmp_path: Path) -> None:
    key = tmp_path / "k"
    for level, kept in (("none", True), ("all", False)):
        run = dotaudit("analyze", str(OFFICE), "-q", "--fail-on", "none", "--redact",
                       "--redact-key", str(key), "--redact-names", level)  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert ("secret.lab.test" in run.stdout) is kept
        assert ("name-" in run.stdout) is not kept


def test_redact_resolvers_hides_resolver_addresses_too(tmp_path: Path) -> None:
    key = tmp_path / "k"
    base = ["analyze", str(OFFICE), "-q", "--fail-on", "none", "--redact", "--redact-key", str(key)]
    kept = dotaudit(*base)
    hidden = dotaudit(*base, "--redact-resolvers")
    assert "203.0.113.53" in kept.stdout and "203.0.113.53" not in hidden.stdout
    assert json.loads(hidden.stdout)["redaction"]["addresses"]["resolvers"] == "pseudonymised"


# -- report: merge first, then redact; never mix --------------------------------------------


def saved(tmp_path: Path, name: str, *extra: str) -> Path:
    out = tmp_path / name
    run = dotaudit("analyze", str(OFFICE), "-q", "--fail-on", "none", "-o", str(out), *extra)
    assert run.returncode == 0, run.stderr
    return out


def test_report_redacts_after_merging(tmp_path: Path) -> None:
    key = tmp_path / "k"
    plain = saved(tmp_path, "plain.json")
    out = tmp_path / "merged.json"
    run = dotaudit("report", str(plain), str(plain), "--redact", "--redact-key", str(key),
                   "-o", str(out), "-q", "--fail-on", "none")  # fmt: skip
    assert run.returncode == 0, run.stderr
    merged = json.loads(out.read_text())
    assert merged["redaction"]["key_fingerprint"]
    assert "198.51.100.24" not in out.read_text()
    assert merged["summary"]["machines"] == 8  # one capture read once: the same machines


def test_report_keeps_a_common_redaction_and_refuses_to_mix(tmp_path: Path) -> None:
    key, other = tmp_path / "k", tmp_path / "other"
    plain = saved(tmp_path, "plain.json")
    redacted = saved(tmp_path, "red.json", "--redact", "--redact-key", str(key))
    elsewhere = saved(tmp_path, "red2.json", "--redact", "--redact-key", str(other))
    both = dotaudit("report", str(redacted), str(redacted), "-q", "--fail-on", "none")
    assert both.returncode == 0 and json.loads(both.stdout)["redaction"]["key_fingerprint"]
    # Refused even where the second report's captures are all in the first already (it
    # would be skipped as a repeat): the two were not meant to be merged as they are.
    mixed = dotaudit("report", str(plain), str(redacted), "-q")
    assert mixed.returncode == 2 and "redacted and unredacted" in mixed.stderr
    keys = dotaudit("report", str(redacted), str(elsewhere), "-q")
    assert keys.returncode == 2 and "different keys" in keys.stderr
    again = dotaudit("report", str(redacted), "--redact", "--redact-key", str(other), "-q")
    assert again.returncode == 2 and "already redacted" in again.stderr


def test_report_refuses_redact_with_evidence_links(tmp_path: Path) -> None:
    plain = saved(tmp_path, "plain.json")
    run = dotaudit("report", str(plain), "--redact", "--redact-key", str(tmp_path / "k"),
                   "--evidence", str(tmp_path), "-q")  # fmt: skip
    assert run.returncode == 2
    assert "analyze --redact --evidence" in run.stderr
    assert not (tmp_path / "k").exists()  # refused before the key was made


# -- probe: the terminal and the monitoring line say no more than the report ---------------


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once it is closed


def test_probe_report_and_nagios_hide_resolver_names(tmp_path: Path) -> None:
    """A real TLS listener whose certificate names another host: the probe's report and
    the --nagios line quote both names, and --redact-resolvers hides both."""
    from tests.test_probe.faults import FaultServer

    key = tmp_path / "k"
    with FaultServer("garbage", tmp_path) as server:  # certificate for fault.test
        target = f"127.0.0.1:{server.port}"
        base = ["probe", target, "--name", "dns.hidden-resolver.example", "--checks",
                "cert.name", "--timeout", "2"]  # fmt: skip
        redact = ["--redact", "--redact-key", str(key), "--redact-resolvers"]
        plain = dotaudit(*base, "--nagios")
        assert "hidden-resolver" in plain.stdout and "fault.test" in plain.stdout
        nagios = dotaudit(*base, *redact, "--nagios")
        assert nagios.stdout.startswith("DOT CRITICAL - ")
        assert "hidden-resolver" not in nagios.stdout and "fault.test" not in nagios.stdout
        full = dotaudit(*base, "-o", str(tmp_path / "full.json"), "--fail-on", "none")
        report = dotaudit(*base, *redact, "-o", str(tmp_path / "probe.json"), "--fail-on", "none")
    assert full.returncode == 0 and report.returncode == 0, report.stderr
    unredacted = (tmp_path / "full.json").read_text()
    assert "hidden-resolver" in unredacted and "fault.test" in unredacted
    for text in (report.stderr, (tmp_path / "probe.json").read_text()):
        assert "hidden-resolver" not in text and "fault.test" not in text


@pytest.mark.parametrize("flags", [["--redact", "--redact-key", "k"], ["--redact-key", "k"]])
def test_probe_discovery_refuses_redaction_before_making_a_key(
    tmp_path: Path, flags: list[str]
) -> None:
    """Discovery (no TARGET, or --discover) reports this host's network and resolvers,
    which have no redaction rules: refused, and no key file is left behind."""
    for extra in ([], ["--discover", "127.0.0.1"]):
        run = dotaudit("probe", *extra, *flags, cwd=tmp_path)
        assert run.returncode == 2, run.stderr
        assert run.stderr.count("\n") == 1 and "discovery reports are not redacted" in run.stderr
    assert not (tmp_path / "k").exists()


def test_probe_stream_lines_are_redacted(tmp_path: Path) -> None:
    key = tmp_path / "k"
    targets = tmp_path / "targets.txt"
    targets.write_text(f"secret-name.example@127.0.0.1:{closed_port()}\n")
    stream = tmp_path / "stream.jsonl"
    run = dotaudit("probe", "--targets", str(targets), "--stream", str(stream), "--checks",
                   "reach.853", "--timeout", "0.5", "--redact", "--redact-key", str(key),
                   "--redact-resolvers", "-q", "-o", str(tmp_path / "out.json"),
                   "--fail-on", "none")  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = stream.read_text().splitlines()
    assert len(lines) == 1 and "secret-name" not in lines[0]
    assert "secret-name" not in (tmp_path / "out.json").read_text()
