"""Which Ethernet address used which IP address: ``host_identity`` events.

The decoder calls this object (it is the capture layer's ``LinkObserver``) with the ARP
and NDP messages of the capture's own link and with the Ethernet source of the first flow
each address started; the dispatcher with the DHCP messages of the flows between ports 67
and 68. Each distinct binding becomes one ``host_identity`` event; the
grouping of addresses into machines is the analyzer's (``detect/machines.py``), which
decides what to believe.

Bounded: at most ``MAX_HOST_BINDINGS`` distinct bindings are remembered and emitted; the
rest are counted in ``host_identity_table_full`` anomalies (the first, then every 1000th).
"""

from __future__ import annotations

from collections.abc import Callable

from dotaudit.capture.packet import addr_text
from dotaudit.dissect.arp import parse_arp
from dotaudit.dissect.dhcp import ACK, BOOTREPLY, BOOTREQUEST, parse_dhcp, prefix_length
from dotaudit.dissect.ndp import NEIGHBOR_ADVERTISEMENT, parse_ndp
from dotaudit.errors import MalformedError
from dotaudit.model.events import AnomalySeen, Event, HostIdentitySeen, builder

Emit = Callable[[Event], None]

MAX_HOST_BINDINGS = 16_384
"""Distinct (MAC, address, source, name, identifier, prefix, router) bindings kept."""
_FULL_REPORT_EVERY = 1000

Binding = tuple[str, str | None, str, str | None, str | None, str | None, bool]


def mac_text(mac: bytes) -> str:
    return mac.hex(":")


def is_unicast_mac(mac: bytes) -> bool:
    """Six bytes, the group bit clear, not all zero (loopback captures' Ethernet header)."""
    return len(mac) == 6 and not mac[0] & 1 and any(mac)


def _prefix_text(address: bytes, length: int) -> str:
    value = int.from_bytes(address, "big")
    bits = len(address) * 8
    network = (value >> (bits - length) << (bits - length)) if length else 0
    return f"{addr_text(network.to_bytes(len(address), 'big'))}/{length}"


class HostIdentityTracker:
    """Parses ARP, NDP and DHCP for the decoder and emits each new binding once."""

    def __init__(
        self,
        file: str,
        emit: Emit,
        limit: int = MAX_HOST_BINDINGS,
        *,
        link_messages: bool = True,
        emit_link: Emit | None = None,
    ) -> None:
        self.file = file
        self.emit = emit
        self.limit = limit
        self.link_messages = link_messages
        """False: ARP and NDP are another tracker's (every parallel shard sees every frame;
        the first one alone reports what belongs to no flow)."""
        self.emit_link = emit_link or emit
        """Where ARP and NDP bindings go (a parallel shard places them apart)."""
        self._seen: set[Binding] = set()
        self.refused = 0

    # -- the LinkObserver protocol ---------------------------------------------------

    def arp(self, frame: int, ts: float, body: bytes) -> None:
        if not self.link_messages:
            return
        try:
            message = parse_arp(body)
        except MalformedError as exc:
            self._anomaly(frame, ts, "", "", "arp", "arp_malformed", str(exc), self.emit_link)
            return
        if message is None or not any(message.sender_ip):  # an ARP probe states nothing
            return
        if not is_unicast_mac(message.sender_mac):
            return
        sender = addr_text(message.sender_ip)
        where = (frame, ts, sender, 0, addr_text(message.target_ip), 0, "arp")
        binding = (mac_text(message.sender_mac), sender, "arp", None, None, None, False)
        self._bind(where, binding, self.emit_link)

    def ndp(
        self, frame: int, ts: float, src: bytes, dst: bytes, hop_limit: int, message: bytes
    ) -> None:
        if not self.link_messages:
            return
        try:
            parsed = parse_ndp(message, hop_limit)
        except MalformedError as exc:
            self._anomaly(frame, ts, addr_text(src), addr_text(dst), "icmpv6", "ndp_malformed",
                          str(exc), self.emit_link)  # fmt: skip
            return
        if parsed is None or parsed.link_address is None:
            return
        if not is_unicast_mac(parsed.link_address):
            return
        if parsed.kind == NEIGHBOR_ADVERTISEMENT:
            address = parsed.target
        elif any(src):  # a solicitation from :: (duplicate address detection) binds nothing
            address = src
        else:
            return
        if address is None or address[0] == 0xFF:  # a multicast target is no host's
            return
        mac = mac_text(parsed.link_address)
        text = addr_text(address)
        where = (frame, ts, addr_text(src), 0, addr_text(dst), 0, "icmpv6")
        self._bind(where, (mac, text, "ndp", None, None, None, parsed.router), self.emit_link)
        for prefix, length in parsed.on_link_prefixes:
            on_link = _prefix_text(prefix, length)
            binding = (mac, text, "ndp", None, None, on_link, parsed.router)
            self._bind(where, binding, self.emit_link)

    def dhcp(
        self, frame: int, ts: float, src: str, sport: int, dst: str, dport: int, payload: bytes
    ) -> None:
        """A DHCP datagram of a flow between ports 67 and 68 (addresses as text)."""
        where = (frame, ts, src, sport, dst, dport, "udp")
        try:
            message = parse_dhcp(payload)
        except MalformedError as exc:
            self._anomaly(frame, ts, where[2], where[4], "udp", "dhcp_malformed", str(exc))
            return
        if message is None or not is_unicast_mac(message.client_mac):
            return
        mac = mac_text(message.client_mac)
        client_id = message.client_id.hex() if message.client_id else None
        if message.op == BOOTREPLY:
            # What a server assigned: only an ACK (an OFFER may be declined).
            if message.message_type not in (ACK, None) or message.your_ip is None:
                return
            prefix = None
            if message.subnet_mask is not None:
                length = prefix_length(message.subnet_mask)
                if length is not None:
                    prefix = _prefix_text(message.your_ip, length)
            address = addr_text(message.your_ip)
            self._bind(where, (mac, address, "dhcp", message.hostname, None, prefix, False))
        elif message.op == BOOTREQUEST:
            address_or_none = addr_text(message.client_ip) if message.client_ip else None
            if address_or_none is None and message.hostname is None and client_id is None:
                return
            binding = (mac, address_or_none, "dhcp", message.hostname, client_id, None, False)
            self._bind(where, binding)

    def frame_source(
        self, frame: int, ts: float, mac: bytes, src: bytes, sport: int, dst: bytes,
        dport: int, proto: int,
    ) -> None:  # fmt: skip
        address = addr_text(src)
        where = (frame, ts, address, sport, addr_text(dst), dport, "tcp" if proto == 6 else "udp")
        self._bind(where, (mac_text(mac), address, "frame", None, None, None, False))

    # -- emitting ------------------------------------------------------------------------

    def _bind(
        self,
        where: tuple[int, float, str, int, str, int, str],
        binding: Binding,
        emit: Emit | None = None,
    ) -> None:
        if binding in self._seen:
            return
        emit = emit or self.emit
        frame, ts, src, sport, dst, dport, transport = where
        if len(self._seen) >= self.limit:
            self.refused += 1
            if self.refused % _FULL_REPORT_EVERY == 1:
                detail = (
                    f"{self.refused} host identity bindings beyond the first {self.limit} "
                    "not recorded"
                )
                self._anomaly(
                    frame, ts, src, dst, transport, "host_identity_table_full", detail, emit
                )
            return
        self._seen.add(binding)
        # Built field by field (see events.builder): cheaper than sixteen keywords.
        event = _HOST_IDENTITY()
        event.file = self.file
        event.frame = frame
        event.ts = ts
        event.src = src
        event.sport = sport
        event.dst = dst
        event.dport = dport
        event.transport = transport
        event.tunnel = None
        event.mac, event.address, event.source = binding[0], binding[1], binding[2]
        event.hostname, event.client_id, event.prefix = binding[3], binding[4], binding[5]
        event.router = binding[6]
        event.__class__ = HostIdentitySeen
        emit(event)

    def _anomaly(
        self, frame: int, ts: float, src: str, dst: str, transport: str, what: str, detail: str,
        emit: Emit | None = None,
    ) -> None:  # fmt: skip
        (emit or self.emit)(
            AnomalySeen(
                file=self.file,
                frame=frame,
                ts=ts,
                src=src,
                sport=0,
                dst=dst,
                dport=0,
                transport=transport,
                what=what,
                detail=detail,
            )
        )


_HOST_IDENTITY = builder(HostIdentitySeen)
