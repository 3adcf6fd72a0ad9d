"""Addresses grouped into machines, from what the capture shows about its own link.

A dual-stack host sends from an IPv4 and an IPv6 address (often several of the latter);
counting addresses counts it twice. ``host_identity`` events say which Ethernet address
(MAC) used which IP address; this detector decides which of those statements to believe
and groups addresses that belong to one MAC into one machine. It makes no findings: its
``machines`` section is what the report counts clients by (``model/machines.py``).

The rule, in the order it is applied (docs/findings.md, "Machines"):

1. **A host's own statements on the link bind.** The sender of an ARP message, the source
   of an NDP solicitation and the target of an advertisement with their link-layer
   address options, and DHCP (``chaddr`` with the address a server acknowledged or the
   client uses). Nobody forwards these: an NDP message must arrive with hop limit 255.
2. **A frame's Ethernet source binds only on-link addresses.** A router's MAC is the
   source of every packet it forwards, so "same source MAC" alone would make one machine
   of every remote server (or, in a capture taken at a server, of every remote client).
   The Ethernet source of the first frame from an address counts only when the address
   is on the link: IPv6 link-local; an IPv6 address whose interface identifier is the
   modified EUI-64 of that very MAC (SLAAC); or an address inside an on-link prefix the
   capture shows (a DHCP-acknowledged subnet, an RA prefix with the on-link flag, the /64
   of an address bound by NDP, the /24 of an IPv4 address bound by ARP or DHCP when no
   DHCP mask covers it).
3. **A MAC that forwards binds nothing by its frames.** A MAC that sent a Router
   Advertisement or an NA with the router flag, or that is the frame source of an
   address outside the known on-link prefixes, is a router: its frames name other
   machines' addresses. (Its own statements, rule 1, still bind its own addresses.)
4. **No machine of many addresses.** A MAC bound to more than ``MAX_MACHINE_ADDRESSES``
   addresses (a proxy-ARP router, a NAT) groups none of them.
5. **One address, one MAC.** An address bound to two MACs that nothing else joins (an
   IP conflict, a lease that moved) joins neither; it is a machine of its own.
6. **DHCP client identifiers** that are not merely the MAC (RFC 4361 DUIDs) join the MACs
   that sent them: one machine with wired and wireless interfaces.

Addresses no statement covers are machines of their own (``model/machines.py``).
"""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar

from dotaudit.detect.base import Detector, Section
from dotaudit.model.events import Event, HostIdentitySeen
from dotaudit.model.findings import Finding

MAX_BINDINGS = 40_000
"""Bindings kept per capture (the capture layer emits at most 16,384 of each kind)."""
MAX_MACHINE_ADDRESSES = 16
"""More addresses than this on one MAC: a router, proxy or NAT, not one machine."""
MAX_ANNOUNCED_PREFIXES = 256
"""DHCP subnets and RA prefixes kept as on-link networks."""
MAX_EVIDENCE = 20
"""Bindings listed per machine as the basis of its grouping."""
STRONG_SOURCES = ("arp", "ndp", "dhcp")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_LINK_LOCAL = ipaddress.IPv6Network("fe80::/10")


def eui64_matches(address: Address, mac: str) -> bool:
    """Is the interface identifier of ``address`` the modified EUI-64 of ``mac`` (RFC 4291
    appendix A: ff:fe in the middle, the universal/local bit inverted)?"""
    if address.version != 6:
        return False
    try:
        raw = bytes.fromhex(mac.replace(":", ""))
    except ValueError:
        return False
    if len(raw) != 6:
        return False
    iid = bytes([raw[0] ^ 0x02]) + raw[1:3] + b"\xff\xfe" + raw[3:]
    return address.packed[8:] == iid


class _Union:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, node: str) -> str:
        parent = self.parent.setdefault(node, node)
        while parent != node:
            grand = self.parent[parent]
            self.parent[node] = grand
            node, parent = parent, grand
        return node

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


class _Binding:
    """What was said of one (MAC, address, source). Most say nothing but the binding
    itself, and a large network has tens of thousands of them: empty tuples cost nothing,
    where three empty sets in a dict cost over a kilobyte."""

    __slots__ = ("client_ids", "hostnames", "prefixes", "router")

    def __init__(self) -> None:
        self.hostnames: tuple[str, ...] = ()
        self.client_ids: tuple[str, ...] = ()
        self.prefixes: tuple[str, ...] = ()
        self.router = False


class MachineDetector(Detector):
    name = "machines"
    event_types: ClassVar[frozenset[type[Event]]] = frozenset({HostIdentitySeen})

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.bindings: dict[tuple[str, str | None, str], _Binding] = {}
        self.dropped = 0
        self.file: str | None = None

    def on_event(self, event: Event) -> None:
        assert isinstance(event, HostIdentitySeen)
        self.file = event.file
        key = (event.mac, event.address, event.source)
        entry = self.bindings.get(key)
        if entry is None:
            if len(self.bindings) >= MAX_BINDINGS:
                self.dropped += 1
                return
            entry = self.bindings[key] = _Binding()
        # Each distinct statement arrives once (the dissector emits a binding once), so
        # these grow by at most one per event; the membership tests keep them sets.
        if event.hostname and event.hostname not in entry.hostnames:
            entry.hostnames += (event.hostname,)
        if event.client_id and event.client_id not in entry.client_ids:
            entry.client_ids += (event.client_id,)
        if event.prefix and event.prefix not in entry.prefixes:
            entry.prefixes += (event.prefix,)
        entry.router = entry.router or event.router

    def finish(self) -> list[Finding]:
        return []

    def sections(self) -> dict[str, Section]:
        return {"machines": self.machines()}

    def machines(self) -> list[dict[str, Any]]:
        parsed: list[tuple[str, Address | None, str, _Binding]] = []
        for (mac, text, source), entry in self.bindings.items():
            address: Address | None = None
            if text is not None:
                try:
                    address = ipaddress.ip_address(text)
                except ValueError:
                    continue
            parsed.append((mac, address, source, entry))
        on_link = self._on_link_networks(parsed)
        routers = {mac for mac, _, _, entry in parsed if entry.router}
        for mac, address, source, _ in parsed:
            # The frame source of an address off the link forwards for others.
            if source != "frame" or address is None:
                continue
            if address not in on_link and on_link.knows(address.version):
                routers.add(mac)
        edges: list[tuple[str, Address, str]] = []
        for mac, address, source, _ in parsed:
            if address is None:
                continue
            believed = source in STRONG_SOURCES or (
                mac not in routers and (address in on_link or eui64_matches(address, mac))
            )
            if believed:
                edges.append((mac, address, source))
        per_mac: dict[str, set[Address]] = {}
        for mac, address, _ in edges:
            per_mac.setdefault(mac, set()).add(address)
        crowded = {mac for mac, found in per_mac.items() if len(found) > MAX_MACHINE_ADDRESSES}
        edges = [edge for edge in edges if edge[0] not in crowded]

        union = _Union()
        hostnames: dict[str, set[str]] = {}
        for mac, _, _, entry in parsed:
            hostnames.setdefault(mac, set()).update(entry.hostnames)
            for client_id in entry.client_ids:
                if not _is_mac_client_id(client_id, mac):
                    union.join("mac:" + mac, "cid:" + client_id)
        macs_of: dict[Address, set[str]] = {}
        for mac, address, _ in edges:
            macs_of.setdefault(address, set()).add(mac)
        ambiguous: set[Address] = set()
        for address, seen_from in macs_of.items():
            roots = {union.find("mac:" + mac) for mac in seen_from}
            if len(roots) > 1:
                ambiguous.add(address)
        for mac, address, _ in edges:
            if address not in ambiguous:
                union.join("mac:" + mac, "ip:" + str(address))

        groups: dict[str, dict[str, Any]] = {}
        for mac, address, source in edges:
            if address in ambiguous:
                continue
            root = union.find("ip:" + str(address))
            group = groups.setdefault(
                root, {"addresses": set(), "macs": set(), "evidence": {}, "router": False}
            )
            group["addresses"].add(address)
            group["macs"].add(mac)
            group["router"] = group["router"] or mac in routers
            group["evidence"].setdefault((str(address), mac), set()).add(source)
        rows: list[dict[str, Any]] = []
        for group in groups.values():
            addresses = sorted(group["addresses"], key=lambda a: (a.version, a))
            group_macs = sorted(group["macs"])
            names = sorted({n for mac in group_macs for n in hostnames.get(mac, ())})
            evidence = [
                {"address": address, "mac": mac, "via": sorted(sources)}
                for (address, mac), sources in sorted(group["evidence"].items())
            ]
            rows.append(
                {
                    "file": self.file,
                    "addresses": [str(a) for a in addresses],
                    "macs": group_macs,
                    "hostnames": names,
                    "router": group["router"],
                    "evidence": evidence[:MAX_EVIDENCE],
                    "evidence_count": len(evidence),
                }
            )
        for address in sorted(ambiguous, key=lambda a: (a.version, a)):
            rows.append(
                {
                    "file": self.file,
                    "addresses": [str(address)],
                    "macs": [],
                    "hostnames": [],
                    "router": False,
                    "evidence": [],
                    "evidence_count": 0,
                    "ambiguous_macs": sorted(macs_of[address]),
                }
            )
        rows.sort(key=lambda r: _address_order(r["addresses"][0]))
        if self.dropped:
            for row in rows:
                row["bindings_dropped"] = self.dropped
        return rows

    @staticmethod
    def _on_link_networks(parsed: list[tuple[str, Address | None, str, _Binding]]) -> _OnLink:
        on_link = _OnLink()
        for _, _, _, entry in parsed:
            for text in entry.prefixes:
                on_link.announce(text)
        for _, address, source, _ in parsed:
            if address is not None and source in STRONG_SOURCES:
                on_link.infer(address, source)
        return on_link


class _OnLink:
    """The prefixes a capture shows to be on its link (rule 2)."""

    def __init__(self) -> None:
        self.announced: list[Network] = []
        self.v4_24: set[int] = set()
        """/24 networks (as the address's top 24 bits) of ARP- and DHCP-bound addresses."""
        self.v6_64: set[int] = set()
        """/64 networks of NDP-bound addresses."""

    def announce(self, text: str) -> None:
        if len(self.announced) >= MAX_ANNOUNCED_PREFIXES:
            return
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return
        if network not in self.announced:
            self.announced.append(network)

    def infer(self, address: Address, source: str) -> None:
        if address.version == 4:
            if not any(address in net for net in self.announced if net.version == 4):
                self.v4_24.add(int(address) >> 8)
        elif source == "ndp" and address not in _LINK_LOCAL:
            self.v6_64.add(int(address) >> 64)

    def knows(self, version: int) -> bool:
        """Does the capture show any on-link prefix of this IP version?"""
        if version == 4:
            return bool(self.v4_24) or any(net.version == 4 for net in self.announced)
        return bool(self.v6_64) or any(net.version == 6 for net in self.announced)

    def __contains__(self, address: Address) -> bool:
        if address.version == 4:
            if int(address) >> 8 in self.v4_24:
                return True
        elif address in _LINK_LOCAL or int(address) >> 64 in self.v6_64:
            return True
        return any(address in net for net in self.announced if net.version == address.version)


def _is_mac_client_id(client_id: str, mac: str) -> bool:
    """RFC 2132 §9.14: type 1 followed by the hardware address is just the MAC again."""
    return client_id.lower() == "01" + mac.replace(":", "").lower()


def _address_order(text: str) -> tuple[int, int]:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return (9, 0)
    return (address.version, int(address))
