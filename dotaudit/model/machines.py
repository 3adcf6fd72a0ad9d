"""Machines, not addresses: the clients of a report counted the way an admin fixes them.

``analyze`` groups the addresses of one capture into machines by what the link showed
(the ``machines`` section, made by ``detect/machines.py``: same Ethernet address in ARP,
NDP, DHCP or on-link frames). This module reads that section back, joins the rows of
several captures that share an Ethernet address, and gives every client address of the
report its machine; an address no row covers is a machine of its own. Everything that
counts clients (the summary, the verdict, "Fix first") counts through here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dotaudit.model.coerce import as_list, as_str, rows_of

CLIENT_SECTIONS = (
    "plaintext_dns",
    "dot_sessions",
    "fallback_events",
    "doh_doq",
    "sni_inventory",
    "local_names",
)
"""Sections whose ``client`` field names a client (local-stub plaintext rows excepted)."""
MAX_MACHINES = 100_000
"""Machines the index builds; clients beyond are counted as machines of their own."""

VIA_WORDS = {
    "arp": "ARP",
    "ndp": "IPv6 neighbour discovery",
    "dhcp": "DHCP",
    "frame": "its own frames",
}


@dataclass
class Machine:
    """One machine: its addresses (IPv4 first), Ethernet addresses and DHCP host names."""

    addresses: list[str]
    macs: list[str] = field(default_factory=list)
    hostnames: list[str] = field(default_factory=list)
    via: dict[str, list[str]] = field(default_factory=dict)
    """Per address, how the capture tied it to the machine's Ethernet address."""
    ambiguous_macs: list[str] = field(default_factory=list)
    """Set when the address was seen from several Ethernet addresses and so joined none."""

    @property
    def key(self) -> str:
        return self.addresses[0]

    @property
    def label(self) -> str:
        """How the report names the machine: its DHCP host name, else its first address."""
        return self.hostnames[0] if self.hostnames else self.addresses[0]

    def basis(self) -> str:
        """How the addresses were grouped, in plain words."""
        if self.ambiguous_macs:
            return (
                f"{self.addresses[0]} was seen from {len(self.ambiguous_macs)} Ethernet "
                f"addresses ({', '.join(self.ambiguous_macs)}), so it is grouped with none"
            )
        if not self.macs:
            return "no link-layer evidence ties this address to another one"
        ways = sorted({word for sources in self.via.values() for word in sources})
        how = ", ".join(VIA_WORDS.get(w, w) for w in ways) or "the capture"
        macs = ", ".join(self.macs)
        mac_words = "Ethernet address" if len(self.macs) == 1 else "Ethernet addresses"
        if len(self.addresses) == 1:
            return f"{mac_words} {macs} ({how}); no other address of it was seen"
        return f"these addresses share the {mac_words} {macs} (seen in {how})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "addresses": list(self.addresses),
            "macs": list(self.macs),
            "hostnames": list(self.hostnames),
            "basis": self.basis(),
        }


def _order(text: str) -> tuple[int, int, str]:
    """Addresses by version and value, anything else after them by text."""
    octets = text.split(".")
    # A report can hold 100 000 clients: dotted quads skip ipaddress (ten times slower),
    # with its rules kept (four decimal octets to 255, no leading zero).
    if len(octets) == 4 and all(
        o.isdecimal() and o.isascii() and len(o) <= 3 and (o == "0" or o[0] != "0") and int(o) < 256
        for o in octets
    ):
        a, b, c, d = (int(o) for o in octets)
        return (4, a << 24 | b << 16 | c << 8 | d, text)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return (9, 0, text)
    return (address.version, int(address), text)


class MachineIndex:
    """Client address -> machine, for one report."""

    def __init__(self, rows: Iterable[dict[str, Any]]) -> None:
        self._by_address: dict[str, Machine] = {}
        by_mac: dict[str, Machine] = {}
        for row in rows:
            if row.get("router") is True:
                continue  # a router is nobody's client machine; its frames name others
            addresses = [a for a in (as_str(x) for x in as_list(row.get("addresses"))) if a]
            if not addresses or len(self._by_address) >= MAX_MACHINES:
                continue
            macs = [m for m in (as_str(x) for x in as_list(row.get("macs"))) if m]
            machine = next((by_mac[m] for m in macs if m in by_mac), None)
            if machine is None:
                machine = Machine(addresses=[])
            for mac in macs:
                if mac not in machine.macs:
                    machine.macs.append(mac)
                by_mac.setdefault(mac, machine)
            for name in (as_str(x) for x in as_list(row.get("hostnames"))):
                if name and name not in machine.hostnames:
                    machine.hostnames.append(name)
            machine.ambiguous_macs += [
                m for m in (as_str(x) for x in as_list(row.get("ambiguous_macs"))) if m
            ]
            for item in rows_of(row.get("evidence")):
                address = as_str(item.get("address"))
                if address:
                    ways = machine.via.setdefault(address, [])
                    for way in (as_str(x) for x in as_list(item.get("via"))):
                        if way and way not in ways:
                            ways.append(way)
            for address in addresses:
                if address not in self._by_address:
                    machine.addresses.append(address)
                    self._by_address[address] = machine
        for machine in {id(m): m for m in self._by_address.values()}.values():
            machine.addresses.sort(key=_order)

    def machine_of(self, address: str) -> Machine:
        """The machine of ``address``; an address no row covers is a machine of its own
        (remembered, so that it is one object however often it is asked for)."""
        machine = self._by_address.get(address)
        if machine is None:
            machine = Machine(addresses=[address])
            if len(self._by_address) < MAX_MACHINES:
                self._by_address[address] = machine
        return machine

    def machines_of(self, addresses: Iterable[str]) -> list[Machine]:
        """The distinct machines of ``addresses``, in the order of their first address."""
        seen: dict[int, Machine] = {}
        for address in addresses:
            machine = self.machine_of(address)
            seen.setdefault(id(machine), machine)
        return sorted(seen.values(), key=lambda m: _order(m.key))


def client_addresses(
    sections: dict[str, list[dict[str, Any]]], findings: Iterable[Any]
) -> list[str]:
    """Every address a report shows as a client: of findings and of the client sections
    (plaintext to a local stub on the same host excepted), in first-seen order."""
    seen: dict[str, None] = {}
    for finding in findings:
        client = getattr(finding, "client", None)
        if isinstance(client, str) and client:
            seen.setdefault(client, None)
    for name in CLIENT_SECTIONS:
        for row in rows_of(sections.get(name)):
            if name == "plaintext_dns" and row.get("local_stub"):
                continue
            client = as_str(row.get("client"))
            if client:
                seen.setdefault(client, None)
    return list(seen)
