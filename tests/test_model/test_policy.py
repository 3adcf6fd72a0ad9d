"""Policy files (TOML): what loads, and the one-line error for everything that must not."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from dotaudit.errors import InputError
from dotaudit.model.findings import CATALOGUE, Severity
from dotaudit.model.policy import (
    MAX_FALLBACK_WINDOW_S,
    ApprovedResolver,
    Policy,
    load_policy,
)

POLICIES = Path(__file__).resolve().parents[1] / "policies"
PIN = base64.b64encode(hashlib.sha256(b"a public key").digest()).decode()
KNOWN_KEYS = (
    "approved_dot, fallback_window_s, internal_resolvers, severity, treat_loopback_as_network"
)


def load(tmp_path: Path, text: str) -> Policy:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return load_policy(path)


def error(tmp_path: Path, text: str) -> str:
    """The message of the InputError the policy raises, without the file name."""
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    return message.removeprefix(f"{path}: ")


# -- what the issue found accepted --------------------------------------------------------


def test_a_string_false_is_not_a_boolean(tmp_path: Path) -> None:
    assert error(tmp_path, 'treat_loopback_as_network = "false"') == (
        "treat_loopback_as_network: expected true or false, got a string"
    )


@pytest.mark.parametrize("value", [True, False])
def test_booleans_load_as_written(tmp_path: Path, value: bool) -> None:
    policy = load(tmp_path, f"treat_loopback_as_network = {str(value).lower()}")
    assert policy.treat_loopback_as_network is value


@pytest.mark.parametrize("text", ["1", "0", "[]"])
def test_other_types_are_not_booleans(tmp_path: Path, text: str) -> None:
    message = error(tmp_path, f"treat_loopback_as_network = {text}")
    assert message.startswith("treat_loopback_as_network: expected true or false, got ")


def test_a_boolean_is_not_a_number_of_seconds(tmp_path: Path) -> None:
    assert error(tmp_path, "fallback_window_s = true") == (
        "fallback_window_s: expected a number of seconds in (0, 3600], got a boolean"
    )


@pytest.mark.parametrize(
    ("text", "seconds"), [("1", 1.0), ("0.001", 0.001), ("3600", 3600.0), ("2.5", 2.5)]
)
def test_window_inside_its_range_loads(tmp_path: Path, text: str, seconds: float) -> None:
    assert load(tmp_path, f"fallback_window_s = {text}").fallback_window_s == seconds


@pytest.mark.parametrize("text", ["0", "-1", "3600.001", "3601", "inf", "nan", "-0.0"])
def test_window_outside_its_range_is_refused(tmp_path: Path, text: str) -> None:
    message = error(tmp_path, f"fallback_window_s = {text}")
    assert message.startswith("fallback_window_s: expected a number of seconds in (0, 3600], got ")


def test_window_bound_is_the_documented_one() -> None:
    assert MAX_FALLBACK_WINDOW_S == 3600


def test_a_string_window_is_refused(tmp_path: Path) -> None:
    assert error(tmp_path, 'fallback_window_s = "10"') == (
        "fallback_window_s: expected a number of seconds in (0, 3600], got a string"
    )


def test_a_string_is_not_a_list_of_resolvers(tmp_path: Path) -> None:
    assert error(tmp_path, 'internal_resolvers = "10.0.0.53"') == (
        "internal_resolvers: expected a list of IP addresses, got a string"
    )


def test_each_resolver_is_checked_by_position(tmp_path: Path) -> None:
    assert error(tmp_path, 'internal_resolvers = ["10.0.0.53", "10.0.0.256"]') == (
        'internal_resolvers[1]: expected an IP address, got "10.0.0.256"'
    )
    assert error(tmp_path, "internal_resolvers = [53]") == (
        "internal_resolvers[0]: expected an IP address, got an integer"
    )


def test_resolvers_load_canonical(tmp_path: Path) -> None:
    policy = load(tmp_path, 'internal_resolvers = ["10.0.0.53", "FD00:0::53"]')
    assert policy.internal_resolvers == frozenset({"10.0.0.53", "fd00::53"})
    assert load(tmp_path, "internal_resolvers = []").internal_resolvers == frozenset()


# -- [[approved_dot]] -------------------------------------------------------------------


def test_unknown_key_in_an_approved_resolver_is_refused(tmp_path: Path) -> None:
    text = f'[[approved_dot]]\naddress = "9.9.9.9"\npin = ["{PIN}"]\n'
    assert error(tmp_path, text) == (
        "approved_dot[0].pin: unknown key (known keys: address, name, pins)"
    )


def test_pins_must_be_a_list(tmp_path: Path) -> None:
    text = '[[approved_dot]]\naddress = "9.9.9.9"\npins = "abc"\n'
    assert error(tmp_path, text) == (
        "approved_dot[0].pins: expected a list of base64 SHA-256 SPKI pins, got a string"
    )


def test_the_error_names_the_entry_and_the_pin(tmp_path: Path) -> None:
    text = (
        f'[[approved_dot]]\naddress = "9.9.9.9"\npins = ["{PIN}"]\n'
        f'[[approved_dot]]\naddress = "1.1.1.1"\npins = ["abc"]\n'
    )
    message = error(tmp_path, text)
    assert message.startswith("approved_dot[1].pins[0]: expected a base64 SHA-256 SPKI pin")
    assert message.endswith('got "abc" (not base64)')


@pytest.mark.parametrize("size", [31, 33])
def test_a_pin_is_a_sha256_digest_exactly(tmp_path: Path, size: int) -> None:
    pin = base64.b64encode(bytes(size)).decode()
    text = f'[[approved_dot]]\naddress = "9.9.9.9"\npins = ["{pin}"]\n'
    assert error(tmp_path, text).endswith(f"({size} bytes)")


def test_a_sha256_pin_loads(tmp_path: Path) -> None:
    text = f'[[approved_dot]]\naddress = "9.9.9.9"\nname = "dns.quad9.net"\npins = ["{PIN}"]\n'
    policy = load(tmp_path, text)
    assert policy.approved_dot == (ApprovedResolver("9.9.9.9", "dns.quad9.net", (PIN,)),)


def test_a_name_must_be_a_string(tmp_path: Path) -> None:
    assert error(tmp_path, '[[approved_dot]]\naddress = "9.9.9.9"\nname = 5\n') == (
        "approved_dot[0].name: expected a host name, got an integer"
    )


@pytest.mark.parametrize(
    "name", ["dns.quad9.net", "dns.quad9.net.", "a", "xn--bcher-kva.example", "a" * 63 + ".net"]
)
def test_host_names_load(tmp_path: Path, name: str) -> None:
    policy = load(tmp_path, f'[[approved_dot]]\naddress = "9.9.9.9"\nname = "{name}"\n')
    assert policy.approved_dot[0].name == name


@pytest.mark.parametrize(
    "name", ["", "-dns.example", "dns-.example", "a..b", "dns example", "a" * 64 + ".net", "."]
)
def test_malformed_host_names_are_refused(tmp_path: Path, name: str) -> None:
    message = error(tmp_path, f'[[approved_dot]]\naddress = "9.9.9.9"\nname = "{name}"\n')
    assert message.startswith("approved_dot[0].name: expected a host name, got ")


def test_an_approved_resolver_needs_an_address(tmp_path: Path) -> None:
    assert error(tmp_path, '[[approved_dot]]\nname = "dns.quad9.net"\n') == (
        "approved_dot[0].address: missing; expected an IP address"
    )


def test_approved_dot_must_be_an_array_of_tables(tmp_path: Path) -> None:
    assert error(tmp_path, '[approved_dot]\naddress = "9.9.9.9"\n') == (
        "approved_dot: expected a list of [[approved_dot]] tables, got a table"
    )
    assert error(tmp_path, 'approved_dot = ["9.9.9.9"]') == (
        "approved_dot[0]: expected a table of address, name and pins, got a string"
    )


def test_one_address_is_approved_once(tmp_path: Path) -> None:
    text = '[[approved_dot]]\naddress = "9.9.9.9"\n[[approved_dot]]\naddress = "9.9.9.9"\n'
    assert error(tmp_path, text) == (
        "approved_dot[1].address: 9.9.9.9 is already approved by approved_dot[0]"
    )


# -- [severity] ---------------------------------------------------------------------------


def test_severity_keys_are_finding_ids(tmp_path: Path) -> None:
    assert error(tmp_path, '[severity]\n"DA-NOPE-001" = "low"\n') == (
        "severity.DA-NOPE-001: unknown key: expected a finding ID from docs/findings.md"
    )


@pytest.mark.parametrize("value", ['"critical"', '"High"', '""'])
def test_severity_values_are_labels(tmp_path: Path, value: str) -> None:
    message = error(tmp_path, f'[severity]\n"DA-DOT-003" = {value}\n')
    assert message == (
        f"severity.DA-DOT-003: expected a severity: info, low, medium, high, got {value}"
    )


def test_a_numeric_severity_is_refused(tmp_path: Path) -> None:
    assert error(tmp_path, '[severity]\n"DA-DOT-003" = 3\n') == (
        "severity.DA-DOT-003: expected a severity: info, low, medium, high, got an integer"
    )


def test_severity_must_be_a_table(tmp_path: Path) -> None:
    assert error(tmp_path, 'severity = "high"') == "severity: expected a table, got a string"


@pytest.mark.parametrize("severity", list(Severity))
def test_every_label_overrides_every_finding(tmp_path: Path, severity: Severity) -> None:
    lines = "".join(f'"{finding}" = "{severity.label}"\n' for finding in CATALOGUE)
    policy = load(tmp_path, "[severity]\n" + lines)
    assert policy.severity_overrides == dict.fromkeys(CATALOGUE, severity)


# -- the file as a whole ------------------------------------------------------------------


def test_unknown_top_level_keys_list_the_known_ones(tmp_path: Path) -> None:
    assert error(tmp_path, "fallback_window = 10") == (
        f"fallback_window: unknown key (known keys: {KNOWN_KEYS})"
    )


def test_an_empty_policy_is_the_default(tmp_path: Path) -> None:
    policy = load(tmp_path, "")
    assert policy == Policy(source=str(tmp_path / "policy.toml"))


def test_the_documented_example_loads(tmp_path: Path) -> None:
    text = f"""
internal_resolvers = ["10.0.0.53", "fd00::53"]
fallback_window_s = 10
treat_loopback_as_network = false

[[approved_dot]]
address = "9.9.9.9"
name = "dns.quad9.net"
pins = ["{PIN}"]

[severity]
"DA-DOT-003" = "info"
"""
    policy = load(tmp_path, text)
    assert policy == Policy(
        internal_resolvers=frozenset({"10.0.0.53", "fd00::53"}),
        approved_dot=(ApprovedResolver("9.9.9.9", "dns.quad9.net", (PIN,)),),
        fallback_window_s=10.0,
        severity_overrides={"DA-DOT-003": Severity.INFO},
        treat_loopback_as_network=False,
        source=str(tmp_path / "policy.toml"),
    )
    assert isinstance(policy.fallback_window_s, float)


def test_the_test_policies_load(tmp_path: Path) -> None:
    paths = sorted(POLICIES.glob("*.toml"))
    assert paths
    for path in paths:
        assert load_policy(path).source == str(path)
    overrides = load_policy(POLICIES / "severity-overrides.toml")
    assert overrides.treat_loopback_as_network is True
    assert overrides.severity_overrides["DA-DOT-001"] is Severity.HIGH
    assert len(overrides.severity_overrides) == 12


def test_not_toml_is_one_line(tmp_path: Path) -> None:
    message = error(tmp_path, "internal_resolvers = [")
    assert message.startswith("not valid TOML: ")
