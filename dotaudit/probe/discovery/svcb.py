"""DNS responses carrying SVCB records (RFC 9460), read one record at a time.

A DNS library refuses a whole message when one record in it is malformed; discovery has
to report that record and still use the others. So the message is walked here record by
record (RFC 1035 §4.1), and each SVCB RDATA is handed to dnspython on its own: what
dnspython refuses is a malformed record, with its reason and its octets.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.svcbbase

SVCB = dns.rdatatype.SVCB
A = dns.rdatatype.A
AAAA = dns.rdatatype.AAAA
MAX_RECORDS = 256
"""Records read per section; a message claiming more is read up to this many."""
MAX_HEX = 512
"""Octets of a malformed record's RDATA kept (as hex) in the report."""

ParamKey = dns.rdtypes.svcbbase.ParamKey
SUPPORTED_KEYS = frozenset(
    {
        ParamKey.MANDATORY,
        ParamKey.ALPN,
        ParamKey.NO_DEFAULT_ALPN,
        ParamKey.PORT,
        ParamKey.IPV4HINT,
        ParamKey.IPV6HINT,
        ParamKey.DOHPATH,
    }
)
"""SvcParamKeys discovery understands: a record that marks any other key mandatory is
one a client "MUST NOT use" (RFC 9462 §4, RFC 9460 §8), and is reported as ignored."""
PROTOCOLS = {"dot": "dot", "doq": "doq", "h2": "doh", "h3": "doh"}
"""ALPN identifiers (RFC 9461 §4.1) and the transport each designates."""
DEFAULT_PORTS = {"dot": 853, "doq": 853, "doh": 443}
"""Ports when a record gives none (RFC 9461 §4.2: the protocol's default port)."""
_TEMPLATE_VARIABLE = re.compile(r"\{[+#./;?&]?([^}]*)\}")


class WireError(ValueError):
    """A message too broken to walk (its header or a record's frame)."""


@dataclass(frozen=True, slots=True)
class RawRecord:
    owner: str
    rdtype: int
    rdclass: int
    ttl: int
    offset: int
    length: int


@dataclass
class Response:
    """The parts of a DNS response discovery reads."""

    id: int
    rcode: int
    truncated: bool
    answers: list[RawRecord] = field(default_factory=list)
    additional: list[RawRecord] = field(default_factory=list)
    skipped: int = 0
    """Records past :data:`MAX_RECORDS` in a section, not read."""


def _name(wire: bytes, pos: int) -> tuple[str, int]:
    try:
        name, used = dns.name.from_wire(wire, pos)
    except (dns.exception.DNSException, IndexError, ValueError) as exc:
        raise WireError(f"a name at octet {pos} does not parse ({exc})") from None
    return name.to_text().lower(), pos + used


def _record(wire: bytes, pos: int) -> tuple[RawRecord, int]:
    owner, pos = _name(wire, pos)
    if pos + 10 > len(wire):
        raise WireError(f"the record of {owner} is cut short")
    rdtype, rdclass, ttl, length = struct.unpack_from("!HHIH", wire, pos)
    pos += 10
    if pos + length > len(wire):
        raise WireError(f"the RDATA of {owner} runs past the end of the message")
    return RawRecord(owner, rdtype, rdclass, ttl, pos, length), pos + length


def walk(wire: bytes) -> Response:
    """Header, answer and additional records of ``wire`` (authority records are skipped
    over); raises WireError when the message cannot be walked."""
    if len(wire) < 12:
        raise WireError("shorter than a DNS header")
    ident, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", wire)
    response = Response(ident, flags & 0xF, bool(flags & 0x0200))
    pos = 12
    for _ in range(qd):
        _, pos = _name(wire, pos)
        pos += 4
        if pos > len(wire):
            raise WireError("the question is cut short")
    for count, keep in ((an, response.answers), (ns, None), (ar, response.additional)):
        for index in range(count):
            if pos >= len(wire):
                raise WireError("fewer records than the header counts")
            record, pos = _record(wire, pos)
            if keep is None:
                continue
            if index < MAX_RECORDS:
                keep.append(record)
            else:
                response.skipped += 1
    return response


@dataclass
class SvcbRecord:
    """One SVCB record as read: its fields, or why it is malformed."""

    owner: str
    ttl: int
    priority: int | None = None
    target: str | None = None
    text: str = ""
    """Presentation format, or ``\\# LEN HEX`` when dnspython refuses it."""
    params: dict[str, Any] = field(default_factory=dict)
    malformed: str | None = None
    mandatory_unknown: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "ttl": self.ttl,
            "priority": self.priority,
            "target": self.target,
            "text": self.text,
            "params": self.params,
            "malformed": self.malformed,
        }


def _key_name(key: int) -> str:
    try:
        return ParamKey.to_text(key).lower()
    except Exception:  # dnspython names unknown keys itself; a bug here must not end discovery
        return f"key{key}"


def _params(rd: Any) -> tuple[dict[str, Any], list[str]]:
    """The record's SvcParams as plain values, and the mandatory keys not understood."""
    params: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in rd.params.items():
        if key == ParamKey.ALPN:
            params["alpn"] = [v.decode("ascii", "backslashreplace") for v in value.ids]
        elif key == ParamKey.NO_DEFAULT_ALPN:
            params["no-default-alpn"] = True
        elif key == ParamKey.PORT:
            params["port"] = int(value.port)
        elif key in (ParamKey.IPV4HINT, ParamKey.IPV6HINT):
            params[_key_name(key)] = [str(a) for a in value.addresses]
        elif key == ParamKey.MANDATORY:
            keys = [int(k) for k in value.keys]
            params["mandatory"] = [_key_name(k) for k in keys]
            unknown = [_key_name(k) for k in keys if k not in SUPPORTED_KEYS]
        elif key == ParamKey.DOHPATH:
            raw = getattr(value, "value", b"")
            params["dohpath"] = raw.decode("utf-8", "backslashreplace")
        else:
            params[_key_name(int(key))] = (getattr(value, "value", b"") or b"").hex()[:MAX_HEX]
    return params, unknown


def read_svcb(wire: bytes, record: RawRecord) -> SvcbRecord:
    """One SVCB record of the message ``wire``; ``malformed`` says why dnspython refused it."""
    out = SvcbRecord(record.owner, record.ttl)
    raw = wire[record.offset : record.offset + record.length]
    try:
        rd: Any = dns.rdata.from_wire(
            dns.rdataclass.RdataClass(record.rdclass),
            dns.rdatatype.RdataType(record.rdtype),
            wire,
            record.offset,
            record.length,
        )
    except Exception as exc:  # every way dnspython refuses hostile RDATA is a malformed record
        out.malformed = f"{type(exc).__name__}: {exc}"[:300]
        out.text = f"\\# {len(raw)} {raw[:MAX_HEX].hex()}"
        if len(raw) >= 2:
            out.priority = struct.unpack_from("!H", raw)[0]
        return out
    out.priority = int(rd.priority)
    out.target = rd.target.to_text().lower()
    out.text = rd.to_text()[:1000]
    out.params, out.mandatory_unknown = _params(rd)
    return out


def addresses_for(wire: bytes, records: list[RawRecord], name: str) -> list[str]:
    """A and AAAA addresses for ``name`` among ``records`` (an additional section)."""
    found: list[str] = []
    for record in records:
        if record.owner != name or record.rdtype not in (A, AAAA):
            continue
        try:
            rd: Any = dns.rdata.from_wire(
                dns.rdataclass.IN,
                dns.rdatatype.RdataType(record.rdtype),
                wire,
                record.offset,
                record.length,
            )
        except Exception:  # a broken address record is one address fewer, no more
            continue
        if str(rd.address) not in found:
            found.append(str(rd.address))
    return found


def rcode_text(value: int) -> str:
    """The name of a header RCODE (an unassigned one as ``RCODE<n>``)."""
    try:
        return dns.rcode.to_text(dns.rcode.Rcode(value))
    except ValueError:
        return f"RCODE{value}"


def dohpath_problem(template: str) -> str | None:
    """Why ``template`` is no usable dohpath (RFC 9461 §5: a relative URI template whose
    variables include "dns"), or None."""
    if not template.startswith("/"):
        return f"dohpath {template!r} is not a path starting with '/'"
    names = {
        part.split(":", 1)[0].rstrip("*")
        for match in _TEMPLATE_VARIABLE.finditer(template)
        for part in match.group(1).split(",")
    }
    if "dns" not in names:
        return f"dohpath {template!r} has no 'dns' variable"
    return None


def dohpath_post_path(template: str) -> str:
    """The path a POST goes to: the template without its expressions (RFC 6570)."""
    return _TEMPLATE_VARIABLE.sub("", template) or "/"
