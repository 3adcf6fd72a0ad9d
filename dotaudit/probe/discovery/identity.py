"""What a resolver says about itself: its NSID (RFC 5001), the CHAOS TXT names
``id.server`` and ``hostname.bind`` (RFC 4892), and its answer to one question. Two
paths that reach the same resolver get the same identity; a difference in the first
three is proof that something else answers one of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dns.edns
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from dotaudit.probe.transport import ProbeError

NSID = dns.edns.OptionType.NSID
CHAOS_NAMES = ("id.server", "hostname.bind")
MAX_TEXT = 200
MAX_ANSWERS = 8

Ask = Callable[[dns.message.Message], dns.message.Message]


@dataclass
class Identity:
    """A resolver's self-description over one path; None for what it does not tell."""

    nsid: str | None = None
    chaos: dict[str, list[str] | None] = field(default_factory=dict)
    rcode: str | None = None
    answer: list[str] = field(default_factory=list)

    def told(self) -> dict[str, Any]:
        """Only what identifies: the NSID and the CHAOS names it answered."""
        out: dict[str, Any] = {}
        if self.nsid:
            out["nsid"] = self.nsid
        out.update({k: v for k, v in self.chaos.items() if v})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "nsid": self.nsid,
            **{k: self.chaos.get(k) for k in CHAOS_NAMES},
            "rcode": self.rcode,
            "answer": self.answer,
        }


def nsid_query(qname: str) -> dns.message.Message:
    return dns.message.make_query(
        dns.name.from_text(qname),
        dns.rdatatype.A,
        use_edns=0,
        payload=1232,
        options=[dns.edns.GenericOption(NSID, b"")],
    )


def chaos_query(name: str) -> dns.message.Message:
    return dns.message.make_query(
        dns.name.from_text(name), dns.rdatatype.TXT, dns.rdataclass.CH, use_edns=0
    )


def _printable(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    if text.isprintable():
        return text[:MAX_TEXT]
    return data.hex()[:MAX_TEXT]


def nsid_of(reply: dns.message.Message) -> str | None:
    for option in reply.options:
        if option.otype == NSID:
            data = option.to_wire() or b""
            return _printable(data) if data else None
    return None


def answers_of(reply: dns.message.Message) -> list[str]:
    rows = [rd.to_text()[:MAX_TEXT] for rrset in reply.answer for rd in rrset]
    return sorted(rows)[:MAX_ANSWERS]


def from_reply(reply: dns.message.Message) -> Identity:
    """The identity one NSID query's reply carries (no CHAOS names)."""
    return Identity(nsid_of(reply), {}, dns.rcode.to_text(reply.rcode()), answers_of(reply))


def ask_identity(ask: Ask, qname: str, chaos: bool = True) -> Identity:
    """Ask through ``ask``: the NSID query must be answered (its ProbeError propagates),
    each CHAOS name may go unanswered."""
    found = from_reply(ask(nsid_query(qname)))
    if not chaos:
        return found
    for name in CHAOS_NAMES:
        try:
            reply = ask(chaos_query(name))
        except ProbeError:
            found.chaos[name] = None
            continue
        texts = sorted(rd.to_text()[:MAX_TEXT] for rrset in reply.answer for rd in rrset)
        found.chaos[name] = texts or None
    return found


def differences(encrypted: Identity, plain: Identity, path: str) -> list[str]:
    """What identifies the two paths differently (``path`` names the encrypted one). Only
    what both answered is compared: a CHAOS name one path leaves unanswered (a resolver
    may refuse CHAOS over TLS) proves nothing."""
    found: list[str] = []
    if encrypted.nsid and plain.nsid and encrypted.nsid != plain.nsid:
        found.append(f"NSID {plain.nsid!r} over port 53, {encrypted.nsid!r} over {path}")
    for name in CHAOS_NAMES:
        ours, theirs = encrypted.chaos.get(name), plain.chaos.get(name)
        if ours and theirs and ours != theirs:
            found.append(f"{name} {', '.join(theirs)} over port 53, {', '.join(ours)} over {path}")
    if encrypted.nsid and not plain.nsid and not plain.told():
        found.append(f"NSID {encrypted.nsid!r} over {path}, none over port 53")
    return found


def same_identity(a: Identity, b: Identity) -> bool:
    """True when both told something identifying and nothing they both told differs."""
    told_a, told_b = a.told(), b.told()
    shared = set(told_a) & set(told_b)
    return bool(shared) and all(told_a[k] == told_b[k] for k in shared)
