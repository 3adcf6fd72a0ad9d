"""IPv6 Neighbor Discovery (RFC 4861): the link-layer addresses hosts state for themselves.

Router and Neighbor Solicitations carry the sender's link-layer address (option 1) for
its source address; a Neighbor Advertisement carries the advertiser's (option 2) for its
target address; a Router Advertisement names the router's and the prefixes that are
on-link (option 3 with the L flag). Messages that RFC 4861 §6.1 and §7.1 tell a node to
drop (hop limit other than 255, a code other than 0, an option of length 0) are not
believed: a hop limit of 255 proves the message was not forwarded, so it came from the
link.
"""

from __future__ import annotations

import struct

from dotaudit.errors import MalformedError

ROUTER_SOLICITATION = 133
ROUTER_ADVERTISEMENT = 134
NEIGHBOR_SOLICITATION = 135
NEIGHBOR_ADVERTISEMENT = 136
NDP_TYPES = frozenset({ROUTER_SOLICITATION, ROUTER_ADVERTISEMENT, NEIGHBOR_SOLICITATION,
                       NEIGHBOR_ADVERTISEMENT})  # fmt: skip
"""The messages read (redirects, 137, name no address of the sender's own)."""

SOURCE_LINK_ADDRESS = 1
TARGET_LINK_ADDRESS = 2
PREFIX_INFORMATION = 3
MAX_OPTIONS = 64
"""Options read per message; a longer run of options is malformed."""
_OPTIONS_AT = {
    ROUTER_SOLICITATION: 8,
    ROUTER_ADVERTISEMENT: 16,
    NEIGHBOR_SOLICITATION: 24,
    NEIGHBOR_ADVERTISEMENT: 24,
}
_PREFIX = struct.Struct("!BB4x4x4x16s").unpack_from


class NdpMessage:
    """One NDP message (a plain slotted class: no code compiled at import)."""

    __slots__ = ("kind", "link_address", "on_link_prefixes", "router", "target")

    def __init__(
        self, kind: int, link_address: bytes | None, target: bytes | None, router: bool,
        on_link_prefixes: tuple[tuple[bytes, int], ...],
    ) -> None:  # fmt: skip
        self.kind = kind
        """The ICMPv6 type: 133 to 136."""
        self.link_address = link_address
        """The source (133-135) or target (136) link-layer address option, 6 bytes for
        Ethernet; None when the message has none."""
        self.target = target
        """The target address of a solicitation or advertisement (135, 136)."""
        self.router = router
        """An RA, or an NA with the router flag."""
        self.on_link_prefixes = on_link_prefixes
        """(prefix, length) of an RA's prefix information options with the on-link flag."""


def parse_ndp(message: bytes, hop_limit: int) -> NdpMessage | None:
    """The NDP message ``message`` (the ICMPv6 message from its type byte on), or None when
    it is another ICMPv6 type or a message RFC 4861 has a node ignore; raises
    MalformedError when cut or when an option is malformed."""
    if len(message) < 4:
        raise MalformedError("ICMPv6 header cut")
    kind, code = message[0], message[1]
    if kind not in NDP_TYPES:
        return None
    if code != 0 or hop_limit != 255:
        return None
    at = _OPTIONS_AT[kind]
    if len(message) < at:
        raise MalformedError(f"NDP type {kind} cut at {len(message)} bytes")
    target = message[8:24] if kind in (NEIGHBOR_SOLICITATION, NEIGHBOR_ADVERTISEMENT) else None
    router = kind == ROUTER_ADVERTISEMENT or (
        kind == NEIGHBOR_ADVERTISEMENT and bool(message[4] & 0x80)
    )
    wanted = TARGET_LINK_ADDRESS if kind == NEIGHBOR_ADVERTISEMENT else SOURCE_LINK_ADDRESS
    link: bytes | None = None
    prefixes: list[tuple[bytes, int]] = []
    for _ in range(MAX_OPTIONS):
        if at >= len(message):
            break
        if at + 2 > len(message):
            raise MalformedError("NDP option header cut")
        option, units = message[at], message[at + 1]
        if units == 0:
            raise MalformedError(f"NDP option {option} of length 0")
        end = at + units * 8
        if end > len(message):
            raise MalformedError(f"NDP option {option} overruns the message")
        if option == wanted and link is None and units == 1:
            link = message[at + 2 : at + 8]
        elif option == PREFIX_INFORMATION and kind == ROUTER_ADVERTISEMENT:
            if units != 4:
                raise MalformedError(f"NDP prefix information of length {units * 8}")
            length, flags, prefix = _PREFIX(message, at + 2)
            if flags & 0x80 and length <= 128:
                prefixes.append((prefix, length))
        at = end
    else:
        if at < len(message):
            raise MalformedError(f"more than {MAX_OPTIONS} NDP options")
    return NdpMessage(kind, link, target, router, tuple(prefixes))
