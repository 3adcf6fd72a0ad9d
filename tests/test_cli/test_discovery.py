"""``dotaudit probe --discover`` (dotaudit/cli/discovery.py), as a user runs it: the
options, their errors, the lab's DDR designations end to end, the built-in list kept off
the network in tests, and ``dotaudit report`` merging a discovery with an analysis.

Oracles: tests/lab/zone.py's DDR_CASES (what each lab record must come out as), the
schema (schema/report.schema.json), and the one-line error contract of the README.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dotaudit.model.resolvers import known_resolvers
from tests.lab.lab import Lab
from tests.lab.zone import DDR_ADDRESS, DDR_ALIAS_ADDRESS
from tests.test_cli.command import SCHEMA, dotaudit
from tests.test_probe.lab_probe import QNAME

DESIGNATIONS = {
    (1, "dot"): "verified",
    (2, "doq"): "verified",
    (3, "doh"): "verified",
    (4, "dot"): "not verified",
    (5, "dot"): "not verified",
    (6, "dot"): "no address",
}


def resolv_conf(tmp_path: Path, *addresses: str) -> Path:
    path = tmp_path / "resolv.conf"
    path.write_text("".join(f"nameserver {a}\n" for a in addresses))
    return path


def no_leases(tmp_path: Path) -> Path:
    """An empty lease file: DNR reads it instead of this machine's own lease state."""
    path = tmp_path / "none.lease"
    path.write_text("")
    return path


def run_json(*argv: str) -> tuple[int, dict[str, Any], str]:
    done = dotaudit("probe", *argv, "--timeout", "2", "-q")
    report: dict[str, Any] = json.loads(done.stdout) if done.stdout else {}
    return done.returncode, report, done.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("--discover", "--resolv-conf", "/nonexistent/resolv.conf"),
            "dotaudit: --resolv-conf: /nonexistent/resolv.conf is not a readable file",
        ),
        (
            ("--discover", "--known", "/nonexistent/known.json"),
            "dotaudit: --known: /nonexistent/known.json: No such file or directory",
        ),
        (
            ("--discover", "--lease", "/nonexistent/lease"),
            "dotaudit: --lease: /nonexistent/lease is not a readable file",
        ),
    ],
)
def test_unusable_files_are_one_line_errors(argv: tuple[str, ...], message: str) -> None:
    done = dotaudit("probe", *argv)
    assert done.returncode == 2
    assert done.stderr.strip() == message


def test_a_known_file_that_is_not_a_resolver_list(tmp_path: Path) -> None:
    bad = tmp_path / "known.json"
    bad.write_text('{"resolvers": [{"provider": "x", "addresses": ["not-an-ip"]}]}')
    done = dotaudit(
        "probe",
        "--discover",
        "--known",
        str(bad),
        "--resolv-conf",
        str(resolv_conf(tmp_path, "127.54.9.1")),
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"dotaudit: --known: {bad}: resolvers[0]: 'not-an-ip' is not an IP address"
    )


def test_discover_is_no_bulk_run(tmp_path: Path) -> None:
    done = dotaudit("probe", "--discover", "--targets", str(tmp_path / "t.txt"))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "dotaudit: --discover takes TARGET arguments, not --targets or --stream"
    )


def test_discover_is_no_monitoring_plugin() -> None:
    done = dotaudit("probe", "--discover", "--nagios")
    assert done.stdout.strip() == "DOT UNKNOWN - --discover cannot be combined with --nagios"
    assert done.returncode == 3


def test_the_built_in_list_never_leaves_the_lab_networks(tmp_path: Path) -> None:
    """Without --known the built-in public list is surveyed; under the tests'
    DOTAUDIT_ALLOWED_NETWORKS the transport refuses every one of its addresses before a
    packet is sent, and the report says they were not tested."""
    code, report, stderr = run_json(
        "--resolv-conf",
        str(resolv_conf(tmp_path, "127.54.9.1")),
        "--lease",
        str(no_leases(tmp_path)),
        "--fail-on",
        "none",
    )
    assert code == 0, stderr
    jsonschema.validate(report, SCHEMA)
    assert len(report["survey"]) == len(known_resolvers().resolvers)
    for row in report["survey"]:
        for transport in ("dot", "doh", "doq", "plain"):
            cell = row[transport]
            assert cell["status"] in ("not tested", "not offered"), (row["address"], cell)
        assert row["connections"]["opened"] == 0
        assert sum(row["connections"].values()) == 0
    assert report["network"][0]["known_source"].startswith("built-in list of public resolvers")


@pytest.mark.lab
def test_discovery_lists_the_lab_designations_verified_and_not(lab: Lab, tmp_path: Path) -> None:
    conf = resolv_conf(tmp_path, DDR_ADDRESS, DDR_ALIAS_ADDRESS)
    code, report, stderr = run_json(
        "--discover",
        "--resolv-conf",
        str(conf),
        "--known",
        "none",
        "--ca",
        str(lab.ca),
        "--qname",
        QNAME,
        "--lease",
        str(no_leases(tmp_path)),
        "--fail-on",
        "none",
    )
    assert code == 0, stderr
    jsonschema.validate(report, SCHEMA)
    assert [(r["address"], r["source"]) for r in report["system_resolvers"]] == [
        (DDR_ADDRESS, f"{conf}:1"),
        (DDR_ALIAS_ADDRESS, f"{conf}:2"),
    ]
    ddr = {
        (d["priority"], d["protocol"]): d["status"]
        for d in report["designations"]
        if d["resolver"] == DDR_ADDRESS
    }
    assert ddr == DESIGNATIONS
    [alias] = [d for d in report["designations"] if d["resolver"] == DDR_ALIAS_ADDRESS]
    assert alias["status"] == "opportunistic"
    assert {d["verified"] for d in report["designations"] if d["status"] == "verified"} == {True}
    ids = sorted(f["id"] for f in report["findings"] if f["id"].startswith("DA-DDR"))
    assert ids == [
        "DA-DDR-001",
        "DA-DDR-001",
        "DA-DDR-002",
        "DA-DDR-003",
        "DA-DDR-003",
        "DA-DDR-003",
    ]
    # the designated resolvers were surveyed too (--known none: only they)
    assert {r["group"] for r in report["survey"]} == {"designated"}
    assert {r["address"] for r in report["survey"]} >= {DDR_ADDRESS, "127.53.3.1", "127.53.4.1"}


@pytest.mark.lab
def test_probe_without_a_target_discovers(lab: Lab, tmp_path: Path) -> None:
    conf = resolv_conf(tmp_path, DDR_ALIAS_ADDRESS)
    out = tmp_path / "network.html"
    done = dotaudit(
        "probe",
        "--resolv-conf",
        str(conf),
        "--known",
        "none",
        "--ca",
        str(lab.ca),
        "--lease",
        str(no_leases(tmp_path)),
        "--timeout",
        "2",
        "-o",
        str(out),
        "--fail-on",
        "none",
    )
    assert done.returncode == 0, done.stderr
    body = out.read_text()
    assert body.index('id="network"') < body.index('id="scope"')
    assert "opportunistic" in body and DDR_ALIAS_ADDRESS in body
    # the terminal summary names the designation and how it was judged
    assert (
        f"DDR {DDR_ALIAS_ADDRESS}: other.test (DOT) at {DDR_ALIAS_ADDRESS}:853: "
        "opportunistic" in done.stderr
    )
