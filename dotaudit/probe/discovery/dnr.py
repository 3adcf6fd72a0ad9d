"""Discovery of Network-designated Resolvers (RFC 9463) from the state the system keeps:
DHCPv4 option 162, DHCPv6 option 144 and the Router Advertisement option 144, where a
lease file or a network manager's state holds them.

Where nothing can be read the report says so, and where it was looked: the system may
well have received DNR options that it did not keep, so "not available" never means
"the network sends none". The option formats are parsed per RFC 9463 §4.1 (DHCPv6),
§5.1 (DHCPv4, with RFC 3396 concatenation) and §6.1 (RA); the service parameters are
SvcParams (RFC 9460 §2.2), read with dnspython.
"""

from __future__ import annotations

import glob
import ipaddress
import os
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from dotaudit.probe.discovery.svcb import DEFAULT_PORTS, PROTOCOLS

DHCPV4_DNR = 162
DHCPV6_DNR = 144
RA_DNR = 144
MAX_LEASE_FILE = 4 * 1024 * 1024
MAX_FILES = 64
MAX_INSTANCES = 32
NMCLI_TIMEOUT = 3.0


class DnrFormatError(ValueError):
    """Option data that does not follow RFC 9463's layout."""


@dataclass
class DnrInstance:
    """One encrypted resolver an option names (RFC 9463 §3.1)."""

    priority: int
    adn: str
    addresses: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    adn_only: bool = False
    """ADN-only mode (§3.1.6): no addresses or parameters; the ADN is resolved to use it."""

    def protocols(self) -> list[str]:
        return [PROTOCOLS[a] for a in self.params.get("alpn", []) if a in PROTOCOLS]

    def port(self, protocol: str) -> int:
        return int(self.params.get("port") or DEFAULT_PORTS[protocol])

    def to_dict(self) -> dict[str, Any]:
        return {
            "priority": self.priority,
            "adn": self.adn,
            "addresses": self.addresses,
            "params": self.params,
            "adn_only": self.adn_only,
        }


def _adn(data: bytes) -> str:
    try:
        name, used = dns.name.from_wire(data + b"", 0)
    except Exception as exc:  # a hostile name is a format error, whatever dnspython raises
        raise DnrFormatError(f"the ADN does not parse ({exc})") from None
    if used != len(data):
        raise DnrFormatError("the ADN length does not match its encoding")
    if b"\xc0" in data[:1] or any(b & 0xC0 == 0xC0 for b in _label_lengths(data)):
        raise DnrFormatError("the ADN uses compression, which RFC 9463 §3.1.3 forbids")
    if name == dns.name.root:
        raise DnrFormatError("the ADN is the root, which names no resolver")
    return name.to_text().lower()


def _label_lengths(data: bytes) -> list[int]:
    out: list[int] = []
    pos = 0
    while pos < len(data):
        out.append(data[pos])
        if data[pos] == 0 or data[pos] & 0xC0:
            break
        pos += 1 + data[pos]
    return out


def _svc_params(data: bytes) -> dict[str, Any]:
    """SvcParams (RFC 9460 §2.2) read by dnspython as a ServiceMode SVCB RDATA."""
    if not data:
        return {}
    from dotaudit.probe.discovery.svcb import RawRecord, read_svcb

    rdata = struct.pack("!H", 1) + b"\x00" + data
    record = read_svcb(rdata, RawRecord("dnr.", 64, 1, 0, 0, len(rdata)))
    if record.malformed is not None:
        raise DnrFormatError(f"the service parameters do not parse: {record.malformed}")
    return record.params


def _addresses(data: bytes, size: int) -> list[str]:
    if len(data) % size:
        raise DnrFormatError(f"the address field is not a multiple of {size} octets")
    family = ipaddress.IPv4Address if size == 4 else ipaddress.IPv6Address
    return [str(family(data[i : i + size])) for i in range(0, len(data), size)]


def parse_v6_option(data: bytes) -> DnrInstance:
    """The option-data of one OPTION_V6_DNR (RFC 9463 §4.1, Figure 1)."""
    if len(data) < 4:
        raise DnrFormatError("shorter than service priority and ADN length")
    priority, adn_len = struct.unpack_from("!HH", data)
    pos = 4
    if pos + adn_len > len(data):
        raise DnrFormatError("the ADN runs past the option")
    adn = _adn(data[pos : pos + adn_len])
    pos += adn_len
    if pos == len(data):
        return DnrInstance(priority, adn, adn_only=True)
    if pos + 2 > len(data):
        raise DnrFormatError("the address length is cut short")
    (addr_len,) = struct.unpack_from("!H", data, pos)
    pos += 2
    if pos + addr_len > len(data):
        raise DnrFormatError("the addresses run past the option")
    addresses = _addresses(data[pos : pos + addr_len], 16)
    pos += addr_len
    return DnrInstance(priority, adn, addresses, _svc_params(data[pos:]))


def parse_v4_option(data: bytes) -> list[DnrInstance]:
    """The (concatenated, RFC 3396) data of OPTION_V4_DNR: DNR Instance Data, each with
    its own length (RFC 9463 §5.1, Figures 4 and 5)."""
    out: list[DnrInstance] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise DnrFormatError("a DNR-Instance-Data-Length is cut short")
        (length,) = struct.unpack_from("!H", data, pos)
        pos += 2
        end = pos + length
        if end > len(data) or length < 3:
            raise DnrFormatError("a DNR instance runs past the option or is too short")
        priority = struct.unpack_from("!H", data, pos)[0]
        adn_len = data[pos + 2]
        start = pos + 3
        if start + adn_len > end:
            raise DnrFormatError("the ADN runs past its instance")
        adn = _adn(data[start : start + adn_len])
        pos = start + adn_len
        if pos == end:
            out.append(DnrInstance(priority, adn, adn_only=True))
        else:
            addr_len = data[pos]
            pos += 1
            if pos + addr_len > end:
                raise DnrFormatError("the addresses run past their instance")
            addresses = _addresses(data[pos : pos + addr_len], 4)
            pos += addr_len
            out.append(DnrInstance(priority, adn, addresses, _svc_params(data[pos:end])))
        pos = end
        if len(out) > MAX_INSTANCES:
            break  # one past the cap: enough for the caller to say that it bit
    return out


def _capped(found: list[DnrInstance], problems: list[str]) -> list[DnrInstance]:
    if len(found) > MAX_INSTANCES:
        problems.append(
            f"more than {MAX_INSTANCES} DNR instances: only the first {MAX_INSTANCES} read"
        )
    return found[:MAX_INSTANCES]


def parse_ra_option(option: bytes) -> DnrInstance:
    """A whole RA Encrypted DNS option, type and length included (RFC 9463 §6.1)."""
    if len(option) < 8 or option[0] != RA_DNR:
        raise DnrFormatError("not an RA option of type 144")
    if option[1] * 8 != len(option):
        raise DnrFormatError("the option length does not match its units of 8 octets")
    priority, lifetime, adn_len = struct.unpack_from("!HIH", option, 2)
    pos = 10
    if pos + adn_len > len(option):
        raise DnrFormatError("the ADN runs past the option")
    adn = _adn(option[pos : pos + adn_len])
    pos += adn_len
    (addr_len,) = struct.unpack_from("!H", option, pos)
    pos += 2
    addresses = _addresses(option[pos : pos + addr_len], 16)
    pos += addr_len
    (params_len,) = struct.unpack_from("!H", option, pos)
    pos += 2
    if pos + params_len > len(option):
        raise DnrFormatError("the service parameters run past the option")
    instance = DnrInstance(priority, adn, addresses, _svc_params(option[pos : pos + params_len]))
    instance.params["lifetime_s"] = lifetime
    return instance


# -- where the system keeps them ----------------------------------------------------------


@dataclass(frozen=True)
class LeasePaths:
    """Where lease state is looked for; tests point these at their own files."""

    dhclient: tuple[str, ...] = (
        "/var/lib/dhcp/dhclient*.lease*",
        "/var/lib/dhclient/*.lease*",
        "/var/lib/NetworkManager/dhclient*.lease*",
    )
    networkmanager: tuple[str, ...] = ("/var/lib/NetworkManager/internal-*.lease",)
    networkd: tuple[str, ...] = ("/run/systemd/netif/leases/*",)
    nmcli: tuple[str, ...] | None = ("nmcli", "-t", "-f", "DHCP4,DHCP6", "device", "show")
    given: tuple[str, ...] = ()
    """Lease files named by the user (``--lease``): read instead of all the above, each
    by the format its content shows."""


@dataclass
class DnrSource:
    """One place DNR state was looked for, and what it held."""

    kind: str
    where: str
    status: str
    """found, none (read, no DNR option), not available (missing or unreadable)."""
    detail: str = ""
    instances: list[DnrInstance] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "where": self.where,
            "status": self.status,
            "detail": self.detail,
            "instances": [i.to_dict() for i in self.instances],
        }


_DHCLIENT_OPTION = re.compile(
    r"option\s+(?P<name>(?:dhcp6\.)?(?:unknown-(?P<code>\d+)|v4-dnr|v6-dnr|dnr))\s+"
    # A quoted value may hold ';' (dhclient quotes any all-printable octet string).
    r'(?P<value>"(?:[^"\\]|\\.)*"|[^;]*);'
)
_HEX_BYTES = re.compile(r"^[0-9a-fA-F]{1,2}(?::[0-9a-fA-F]{1,2})*$")


def _dhclient_value(text: str) -> bytes:
    """An option value as dhclient writes it: colon-separated hex octets, or a quoted
    string with C escapes (octal \\ooo) when every octet is printable."""
    text = text.strip()
    if _HEX_BYTES.match(text):
        return bytes(int(part, 16) for part in text.split(":"))
    if len(text) >= 2 and text[0] == text[-1] == '"':
        out = bytearray()
        body = text[1:-1]
        i = 0
        while i < len(body):
            char = body[i]
            if char == "\\" and i + 1 < len(body):
                octal = re.match(r"[0-7]{1,3}", body[i + 1 :])
                if octal:
                    out.append(int(octal.group(0), 8) & 0xFF)
                    i += 1 + len(octal.group(0))
                    continue
                out.append(ord(body[i + 1]) & 0xFF)
                i += 2
                continue
            out += char.encode("latin-1", "replace")
            i += 1
        return bytes(out)
    raise DnrFormatError(f"an option value dhclient would not write: {text[:60]!r}")


def _parse_dhcp_value(code: int, six: bool, data: bytes) -> list[DnrInstance]:
    if six:
        return [parse_v6_option(data)]
    return parse_v4_option(data)


def read_dhclient(text: str, where: str) -> DnrSource:
    """The newest lease of a dhclient lease file (dhclient appends) holding a DNR option."""
    blocks = re.findall(r"lease6?\s*\{(.*?)\n\}", text, re.S)
    found: list[DnrInstance] = []
    problems: list[str] = []
    for block in blocks[-1:]:  # dhclient appends: the last lease is the current one
        six = "dhcp6." in block or "ia-na" in block
        for match in _DHCLIENT_OPTION.finditer(block):
            if len(found) > MAX_INSTANCES:
                break
            code = int(match.group("code")) if match.group("code") else None
            name = match.group("name")
            if code is None:
                code = DHCPV6_DNR if "6" in name or six else DHCPV4_DNR
            is_v6 = name.startswith("dhcp6.") or six
            wanted = DHCPV6_DNR if is_v6 else DHCPV4_DNR
            if code != wanted:
                continue
            try:
                found += _parse_dhcp_value(code, is_v6, _dhclient_value(match.group("value")))
            except DnrFormatError as exc:
                problems.append(f"option {code}: {exc}")
    if found:
        found = _capped(found, problems)
        return DnrSource("dhclient lease", where, "found", "; ".join(problems), found)
    if problems:
        return DnrSource("dhclient lease", where, "malformed", "; ".join(problems))
    return DnrSource(
        "dhclient lease",
        where,
        "none",
        f"{len(blocks)} lease(s) read; no option 162 or 144 in the newest",
    )


def read_networkd(text: str, where: str) -> DnrSource:
    """systemd-networkd's lease state (KEY=VALUE): DNR entries where it keeps them, and
    the raw option 162 if it was kept as ``OPTION_162``."""
    values = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )
    raw = values.get(f"OPTION_{DHCPV4_DNR}")
    if raw:
        try:
            instances = parse_v4_option(bytes.fromhex(raw.strip()))
        except (ValueError, DnrFormatError) as exc:
            return DnrSource("systemd-networkd lease", where, "malformed", str(exc))
        notes = ["OPTION_162"]
        instances = _capped(instances, notes)
        return DnrSource("systemd-networkd lease", where, "found", "; ".join(notes), instances)
    dnr = values.get("DNR")
    if dnr:
        # As networkd words it: kept verbatim, never reinterpreted.
        return DnrSource(
            "systemd-networkd lease",
            where,
            "found",
            f"DNR={dnr.strip()[:500]} (networkd's own summary)",
        )
    return DnrSource(
        "systemd-networkd lease",
        where,
        "none",
        "lease read; it keeps no DNR entry (networkd keeps raw options only "
        "for private codes 224-254)",
    )


def read_networkmanager(text: str, where: str) -> DnrSource:
    """A NetworkManager internal-client lease: it keeps the address and DNS servers, not
    the raw options, so only an explicit DNR entry could be reported."""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip().upper() in ("DNR", "V4_DNR", "V6_DNR"):
            return DnrSource(
                "NetworkManager lease",
                where,
                "found",
                f"{key.strip()}={value.strip()[:500]} (as NetworkManager states it)",
            )
    return DnrSource(
        "NetworkManager lease",
        where,
        "none",
        "lease read; the internal DHCP client keeps no DHCP options in it",
    )


_NMCLI_OPTION = re.compile(
    r"(?:unknown|private|option)_(?P<code>162|144)\s*=\s*(?P<value>.+)$", re.I
)


def read_nmcli(text: str, where: str) -> DnrSource:
    """``nmcli -t -f DHCP4,DHCP6 device show``: options by name = value."""
    found: list[DnrInstance] = []
    problems: list[str] = []
    for line in text.splitlines():
        head, _, option = line.partition(":")
        match = _NMCLI_OPTION.search(option)
        if not match or len(found) > MAX_INSTANCES:
            continue
        six = head.upper().startswith("DHCP6")
        value = match.group("value").strip().replace(":", "").removeprefix("0x")
        try:
            data = bytes.fromhex(value)
            found += _parse_dhcp_value(int(match.group("code")), six, data)
        except (ValueError, DnrFormatError) as exc:
            problems.append(f"{head}: {exc}")
    if found:
        found = _capped(found, problems)
        return DnrSource("NetworkManager (nmcli)", where, "found", "; ".join(problems), found)
    if problems:
        return DnrSource("NetworkManager (nmcli)", where, "malformed", "; ".join(problems))
    return DnrSource(
        "NetworkManager (nmcli)",
        where,
        "none",
        "no option 162 or 144 among the DHCP options NetworkManager reports",
    )


def read_lease_text(text: str, where: str) -> DnrSource:
    """A lease file of any kind read here, told apart by its content."""
    if re.search(r"^\s*lease6?\s*\{", text, re.M):
        return read_dhclient(text, where)
    if re.search(r"^(OPTION_\d+|DNR|ADDRESS|LIFETIME|SERVER_ADDRESS)=", text, re.M):
        return read_networkd(text, where)
    return DnrSource(
        "lease file", where, "none", "neither a dhclient lease file nor KEY=VALUE lease state"
    )


def _read_text(path: str) -> str:
    with open(path, "rb") as handle:
        data = handle.read(MAX_LEASE_FILE + 1)
    if len(data) > MAX_LEASE_FILE:
        raise ValueError(f"larger than {MAX_LEASE_FILE >> 20} MiB")
    return data.decode("utf-8", "replace")


def _files(patterns: tuple[str, ...]) -> tuple[list[str], int]:
    """The files the patterns match, at most MAX_FILES, and how many more there were."""
    found: list[str] = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            if os.path.isfile(path) and path not in found:
                found.append(path)
    return found[:MAX_FILES], max(0, len(found) - MAX_FILES)


def read_dnr(paths: LeasePaths) -> list[DnrSource]:
    """Every place DNR state could be kept, each with what it held or why it could not
    be read; the last row says that Router Advertisement options are not kept."""
    out: list[DnrSource] = []
    if paths.given:
        for path in paths.given:
            try:
                text = _read_text(path)
            except (OSError, ValueError) as exc:
                why = getattr(exc, "strerror", None) or str(exc)
                out.append(DnrSource("lease file", path, "not available", f"unreadable: {why}"))
                continue
            out.append(read_lease_text(text, path))
        return out
    readers = (
        ("dhclient lease", paths.dhclient, read_dhclient),
        ("NetworkManager lease", paths.networkmanager, read_networkmanager),
        ("systemd-networkd lease", paths.networkd, read_networkd),
    )
    for kind, patterns, reader in readers:
        files, left_out = _files(patterns)
        if not files:
            out.append(DnrSource(kind, ", ".join(patterns), "not available", "no such file"))
            continue
        if left_out:
            out.append(
                DnrSource(
                    kind,
                    ", ".join(patterns),
                    "not available",
                    f"{left_out} more file(s) not read: only the first {MAX_FILES} are",
                )
            )
        for path in files:
            try:
                out.append(reader(_read_text(path), path))
            except (OSError, ValueError) as exc:
                why = getattr(exc, "strerror", None) or str(exc)
                out.append(DnrSource(kind, path, "not available", f"unreadable: {why}"))
    out.append(_nmcli(paths.nmcli))
    out.append(
        DnrSource(
            "Router Advertisement (option 144)",
            "kernel and systemd-networkd state",
            "not available",
            "the kernel keeps no unknown RA options, and no state file on this system holds "
            "RA option 144",
        )
    )
    return out


def _nmcli(argv: tuple[str, ...] | None) -> DnrSource:
    kind = "NetworkManager (nmcli)"
    if argv is None:
        return DnrSource(kind, "nmcli", "not available", "not asked")
    if shutil.which(argv[0]) is None:
        return DnrSource(kind, argv[0], "not available", f"{argv[0]} is not installed")
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=NMCLI_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return DnrSource(kind, " ".join(argv), "not available", str(exc))
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip()[:200]
        return DnrSource(kind, " ".join(argv), "not available", why or f"exit {done.returncode}")
    return read_nmcli(done.stdout[:MAX_LEASE_FILE], " ".join(argv))
