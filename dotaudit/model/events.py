"""Facts the dissectors emit: one frozen record per thing seen on the wire.

Events carry no verdicts. Every record names the file, the 1-based frame number,
the capture timestamp and the flow's endpoints, so a detector's finding can point
an admin at the exact frames behind it. ``to_dict`` is the stable ``dotaudit events``
JSON schema (``EVENTS_SCHEMA``), documented in ``docs/events.md``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from typing import Any, ClassVar, TypeVar, dataclass_transform

EVENTS_SCHEMA = "dotaudit.events/2"
"""Version 2 added the ``host_identity`` record (which Ethernet address sent which IP address)."""

_T = TypeVar("_T")


# -- fast construction -----------------------------------------------------------------
#
# An event is made for every DNS message and every flow, so the generic machinery of
# frozen dataclasses shows on the hot path: their ``__init__`` sets each field through
# ``object.__setattr__`` (about 0.25 µs a field) and ``json.dumps(to_dict())`` walks every
# value twice. Both are replaced by code generated once per class from its dataclass
# fields, the way ``dataclasses`` itself generates ``__init__``. The public classes,
# their signatures, equality, hashing and immutability are unchanged.


def _builder_class(cls: type) -> type:
    """A mutable class with exactly ``cls``'s slot layout (same base, same own slots).

    ``__init__`` switches the new instance to it, fills the slots with plain stores and
    switches it back; CPython allows ``__class__`` assignment between identical layouts.
    Both hooks must be object's own: one Python-level hook (the frozen ``__delattr__``)
    and every store goes through a Python call again.
    """
    return type(
        f"_{cls.__name__}Builder",
        (cls.__base__ or object,),
        {
            "__slots__": vars(cls)["__slots__"],
            "__init__": object.__init__,
            "__setattr__": object.__setattr__,
            "__delattr__": object.__delattr__,
        },
    )


def _fast_init(cls: type[_T]) -> type[_T]:
    """Give a frozen, slotted, keyword-only dataclass an ``__init__`` without setattr calls
    (for its own instances; a subclass's go through ``object.__setattr__``, as with
    ``dataclasses``)."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if not all(f.kw_only and f.init for f in fields) or "__slots__" not in vars(cls):
        raise TypeError(f"{cls.__name__}: not the record shape _fast_init generates")
    ns: dict[str, Any] = {
        "_cls": cls,
        "_builder": _builder_class(cls),
        "_setattr": object.__setattr__,
        "_MISSING": dataclasses.MISSING,
    }
    params: list[str] = []
    body: list[str] = []
    for f in fields:
        if f.default is not dataclasses.MISSING:
            ns[f"_d_{f.name}"] = f.default
            params.append(f"{f.name}=_d_{f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            ns[f"_f_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_MISSING")
            body.append(f"    if {f.name} is _MISSING:\n        {f.name} = _f_{f.name}()")
        else:
            params.append(f.name)
    names = [f.name for f in fields]
    source = "\n".join(
        [
            f"def __init__(self, *, {', '.join(params)}):",
            *body,
            "    if type(self) is not _cls:",  # a subclass: the dataclass way
            *(f"        _setattr(self, {n!r}, {n})" for n in names),
            "        return",
            '    _setattr(self, "__class__", _builder)',
            *(f"    self.{n} = {n}" for n in names),
            "    self.__class__ = _cls",
        ]
    )
    exec(source, ns)  # generated from the dataclass's own field names
    _BUILDERS[cls] = ns["_builder"]
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


_BUILDERS: dict[type, type] = {}


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field,))
def _record(cls: type[_T]) -> type[_T]:
    """A frozen, slotted, keyword-only dataclass whose ``__init__`` is made by
    ``_fast_init`` (not by ``dataclasses``: that one would be compiled, at every
    start-up, only to be replaced)."""
    return _fast_init(dataclass(frozen=True, slots=True, kw_only=True, init=False)(cls))


@_record
class Event:
    """Common fields of every record: where (file, frame, endpoints) and when (ts)."""

    type: ClassVar[str] = "event"
    file: str
    frame: int
    ts: float
    src: str
    sport: int
    dst: str
    dport: int
    transport: str
    tunnel: str | None = None
    """The encapsulation the fact was seen in, outermost layer first (docs/events.md).
    None, and absent from the JSON, when it was not tunnelled."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for name, plain in _dict_fields(type(self)):
            value = getattr(self, name)
            if value is None and name in OMITTED_WHEN_NONE:
                continue
            out[name] = value if plain else _plain(value)
        return out


OMITTED_WHEN_NONE = frozenset({"tunnel", "bypassed_after"})
"""Fields left out of the JSON when None: a reader of the fact stream sees them only on the
records they concern (tunnelled traffic, bypassed flows), and every other record keeps
exactly the shape it had before they existed."""


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_DICT_FIELDS: dict[type, tuple[tuple[str, bool], ...]] = {}
_SCALARS = (str, int, float, bool)


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(cls))
        _FIELD_NAMES[cls] = names
    return names


def _dict_fields(cls: type) -> tuple[tuple[str, bool], ...]:
    """(name, value needs no conversion) per field: scalars and their Optionals pass as is."""
    fields = _DICT_FIELDS.get(cls)
    if fields is None:
        hints = _type_hints(cls)
        fields = tuple(
            (name, all(t in _SCALARS or t is type(None) for t in _union_members(hints[name])))
            for name in _field_names(cls)
        )
        _DICT_FIELDS[cls] = fields
    return fields


_HINTS: dict[tuple[str, str], Any] = {}


def _type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints(cls)`` for the fields, evaluating each distinct annotation
    text once: the same dozen texts recur in every class, and each evaluation compiles."""
    hints: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        hint = f.type
        if isinstance(hint, str):
            key = (cls.__module__, hint)
            if key not in _HINTS:
                _HINTS[key] = eval(
                    hint, vars(sys.modules[cls.__module__])
                )  # as get_type_hints does
            hint = _HINTS[key]
        hints[f.name] = hint
    return hints


def _union_members(hint: Any) -> tuple[Any, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return (hint,)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: _plain(getattr(value, name)) for name in _field_names(type(value))}
    return value


@_record
class Edns:
    """The OPT pseudo-record of a DNS message (RFC 6891)."""

    udp_size: int
    do: bool
    version: int = 0
    padding: int | None = None
    """Length of the padding option's data, None when the option is absent."""
    keepalive: int | None = None
    """EDNS TCP keepalive timeout in units of 100 ms; -1 when the option has no value."""
    ecs: str | None = None
    """Client Subnet as ``address/source-prefix``."""
    nsid: str | None = None
    """NSID as hex; empty string for an empty (request) option."""
    options: tuple[int, ...] = ()


@_record
class DnsMessageSeen(Event):
    """One DNS message (query or response), in the clear or decrypted."""

    type: ClassVar[str] = "dns"
    id: int
    qr: str
    """"query" or "response"."""
    opcode: int
    rcode: int
    flags: tuple[str, ...]
    qname: str | None
    """Question name without the trailing dot; None when there is no question."""
    qtype: int | None
    qdcount: int
    ancount: int
    edns: Edns | None
    service: str = "dns"
    """"dns", "mdns" or "llmnr"."""
    size: int = 0
    malformed: bool = False


@_record
class TlsClientHelloSeen(Event):
    """A TLS ClientHello with its fingerprints."""

    type: ClassVar[str] = "tls_client_hello"
    sni: str | None
    alpn: tuple[str, ...]
    versions: tuple[str, ...]
    """Offered versions, GREASE removed: from supported_versions, else the legacy version."""
    ciphers: int
    ja4: str
    ja3: str
    ja3_string: str
    ech: bool
    esni: bool = False


@_record
class TlsServerHelloSeen(Event):
    """A TLS ServerHello: the negotiated version, cipher and ALPN."""

    type: ClassVar[str] = "tls_server_hello"
    version: str
    cipher: str
    alpn: str | None


@_record
class TlsCertificateSeen(Event):
    """One certificate of a chain sent in the clear (TLS 1.2 and older)."""

    type: ClassVar[str] = "tls_certificate"
    position: int
    """0 is the leaf."""
    subject: str
    issuer: str
    san: tuple[str, ...]
    not_before: str
    not_after: str
    spki_sha256: str
    self_signed: bool
    signature_algorithm: str | None = None


@_record
class TlsAlertSeen(Event):
    """A cleartext TLS alert."""

    type: ClassVar[str] = "tls_alert"
    level: int
    description: int
    description_name: str
    from_server: bool


@_record
class QuicInitialSeen(Event):
    """A decrypted QUIC Initial carrying a ClientHello."""

    type: ClassVar[str] = "quic_initial"
    version: str
    dcid: str
    sni: str | None
    alpn: tuple[str, ...]
    ja4: str
    ech: bool


@_record
class TlsRecord:
    """Time, frame, length and content type of one TLS record of a connection."""

    ts: float
    frame: int
    length: int
    content_type: int


@_record
class ConnectionSeen(Event):
    """A TCP or UDP flow that ended (closed, expired, or still open at capture end).

    ``src``/``sport`` is the initiator when it is known (the SYN sender), else the
    sender of the first packet seen. ``frame``/``ts`` are those of the first packet.
    """

    type: ClassVar[str] = "connection"
    outcome: str
    """One of OUTCOMES."""
    start: float
    end: float
    first_frame: int
    last_frame: int
    packets_fwd: int
    packets_rev: int
    bytes_fwd: int
    bytes_rev: int
    syn_retransmits: int = 0
    handshake_seen: bool = False
    mid_stream: bool = False
    """No SYN was seen: the capture started inside this connection."""
    ended_by: str = "capture_end"
    """"close", "idle_timeout" or "capture_end"."""
    closed_by: str | None = None
    """"client" or "server" for FIN/RST closes."""
    icmp: str | None = None
    """ICMP error that rejected the flow, e.g. "admin-prohibited"."""
    icmp_frame: int | None = None
    rst_ttl: int | None = None
    server_ttl: int | None = None
    tls_records_fwd: tuple[TlsRecord, ...] = field(default=())
    tls_records_rev: tuple[TlsRecord, ...] = field(default=())
    tls_records_truncated: bool = False
    app: str | None = None
    """What the payload was recognised as: "tls", "dns", "quic" or None."""
    bypassed_after: int | None = None
    """Set when dotaudit stopped reading this flow in full after this frame (it had
    nothing more to report): from there on only its SYN/FIN/RST segments, and one packet
    per idle timeout, were read. Counters, ``end``, ``last_frame``, ``ended_by`` and the
    TLS records then describe only what was read. Omitted from JSON when None."""


OUTCOMES = (
    "established",  # TCP handshake completed, no close seen (open at end, or idle-expired)
    "closed_fin",
    "closed_rst",  # RST after the TCP handshake (or mid-stream); see closed_by
    "refused",  # the SYN was answered with RST
    "syn_unanswered",  # SYN (and syn_retransmits retransmits) with no answer at all
    "icmp_rejected",  # an ICMP/ICMPv6 error quoting this flow; see icmp
    "udp",  # a UDP flow that went idle or was open at capture end
)


@_record
class AnomalySeen(Event):
    """Something malformed or odd on the wire, named by ``what``."""

    type: ClassVar[str] = "anomaly"
    what: str
    """Stable short name, e.g. "tcp_gap", "dns_malformed", "snaplen_truncated"."""
    detail: str = ""


@_record
class HttpRequestSeen(Event):
    """A request head in cleartext HTTP/2 (h2c), where DNS over HTTPS can travel unencrypted."""

    type: ClassVar[str] = "http_request"
    method: str
    authority: str | None
    """``:authority`` (or ``Host``), escaped; None when absent."""
    path: str
    """``:path``, escaped, cut at 1024 bytes."""
    content_type: str | None
    stream: int
    """HTTP/2 stream id (1 for the HTTP/1.1 request that asked for the upgrade)."""
    h2c: bool = True
    """Cleartext HTTP/2: prior-knowledge preface or ``Upgrade: h2c``."""


@_record
class HostIdentitySeen(Event):
    """Which Ethernet address (MAC) a host on the capture's link used for which IP address,
    once per distinct binding. What groups a machine's addresses in ``analyze``.

    ``src``/``dst`` (and ports) are those of the packet that told: ARP's sender and target
    protocol addresses, the IPv6 addresses of an NDP message, a DHCP message's, or the first
    TCP SYN or UDP datagram an address sent. ``transport`` is ``arp``, ``icmpv6``, ``udp``
    or ``tcp``.
    """

    type: ClassVar[str] = "host_identity"
    mac: str
    """``aa:bb:cc:dd:ee:ff``, lower case."""
    address: str | None
    """The IP address bound to ``mac``; None for a DHCP message that names no address yet
    (its ``hostname`` or ``client_id`` still identify the machine)."""
    source: str
    """``arp`` (an ARP sender), ``ndp`` (NS/RS source or NA target with its link-layer
    address option, an RA's router), ``dhcp`` (chaddr with the assigned or used address),
    or ``frame`` (the Ethernet source of the first frame from ``address``)."""
    hostname: str | None = None
    """DHCP host name (option 12), escaped like other wire text."""
    client_id: str | None = None
    """DHCP client identifier (option 61) as hex."""
    prefix: str | None = None
    """An on-link prefix this fact announces: a DHCP subnet (``address/len``), an RA
    prefix with the on-link flag."""
    router: bool = False
    """The MAC is a router's: it sent a Router Advertisement or an NA with the router flag."""


EVENT_CLASSES: tuple[type[Event], ...] = (
    DnsMessageSeen,
    TlsClientHelloSeen,
    TlsServerHelloSeen,
    TlsCertificateSeen,
    TlsAlertSeen,
    QuicInitialSeen,
    HttpRequestSeen,
    ConnectionSeen,
    AnomalySeen,
    HostIdentitySeen,
)
"""Every record type ``dotaudit events`` writes, in the order of docs/events.md (outputs
that need the types up front, such as the Parquet schemas, derive them from here)."""


# -- JSON lines -----------------------------------------------------------------------


def builder(cls: type) -> Callable[[], Any]:
    """The cheapest way to make a ``cls`` instance on a hot path (``cls`` is one of the
    frozen classes above): ``b = builder(cls)()``, assign *every* field with plain
    attribute stores, then ``b.__class__ = cls``. The result equals ``cls(**fields)``
    (defaults are not applied: a field left unset stays unset). Keyword calls cost about
    six times more than the stores: Python matches each keyword argument by name.
    """
    made: Callable[[], Any] = _BUILDERS[cls]
    return made


def event_json_line(event: Event) -> str:
    """One line of ``dotaudit events`` output: the event's ``to_dict()`` plus ``schema``.

    Exactly ``json.dumps({**event.to_dict(), "schema": EVENTS_SCHEMA},
    separators=(",", ":")) + "\\n"``, from an encoder generated per class; a value that
    does not match its field's annotation takes that generic way instead.
    """
    encode = _LINE_ENCODERS.get(type(event))
    if encode is None:
        encode = _LINE_ENCODERS[type(event)] = _line_encoder(type(event))
    try:
        return encode(event)
    except (TypeError, ValueError, AttributeError):
        return _generic_line(event)


_LINE_ENCODERS: dict[type, Callable[[Any], str]] = {}
_DUMPS = json.JSONEncoder(separators=(",", ":")).encode


def _generic_line(event: Event) -> str:
    record = event.to_dict()
    record["schema"] = EVENTS_SCHEMA
    return _DUMPS(record) + "\n"


def compact_json(record: dict[str, Any]) -> str:
    """A record as the events stream writes it (no spaces, ASCII only)."""
    return _DUMPS(record)


def _line_encoder(cls: type) -> Callable[[Any], str]:
    ns: dict[str, Any] = {
        "_s": encode_basestring_ascii,
        "_int": int,
        "_str": str,
        "_float": float,
        "_repr": float.__repr__,
        "_inf": math.inf,
        "_d": _DUMPS,
        "_generic": lambda value: _DUMPS(_plain(value)),
        "_file": _FILE_TEXT,
        "_file_text": _file_text,
        "_r": _REPEATED_TEXTS,
        "_r_text": _repeated_text,
    }
    head = '{"type":' + encode_basestring_ascii(cls.type) + ","  # type: ignore[attr-defined]
    tail = f',"schema":{encode_basestring_ascii(EVENTS_SCHEMA)}}}\n'
    literals, exprs = _object_parts(cls, "o", ns, 1, head, tail)
    # An f-string whose literal pieces are constants: no quoting questions, one
    # BUILD_STRING. The value expressions only ever use double-quoted literals.
    pieces: list[str] = []
    for i, literal in enumerate(literals):
        if literal:  # an optional field's key travels with its value: no empty piece
            ns[f"_L{i}"] = literal
            pieces.append(f"{{_L{i}}}")
        if i < len(exprs):
            pieces.append(f"{{{exprs[i]}}}")
    source = f"def encode(o):\n    return f'{''.join(pieces)}'"
    exec(source, ns)  # generated from the dataclass's own field names
    encoder: Callable[[Any], str] = ns["encode"]
    return encoder


def _object_parts(
    cls: type, ref: str, ns: dict[str, Any], depth: int, head: str, tail: str
) -> tuple[list[str], list[str]]:
    """The JSON object of ``ref`` as literal texts interleaved with value expressions
    (one more literal than expressions)."""
    hints = _type_hints(cls)
    literals: list[str] = []
    exprs: list[str] = []
    literal = head
    for i, name in enumerate(_field_names(cls)):
        value = f"{ref}.{name}"
        if name in OMITTED_WHEN_NONE and i:
            # The key travels with the value: nothing at all when None.
            literals.append(literal)
            ns[f"_K_{name}"] = f",{encode_basestring_ascii(name)}:"
            kinds = [t for t in _union_members(hints[name]) if t is not type(None)]
            text = _value_expr(kinds[0] if len(kinds) == 1 else hints[name], value, ns, depth)
            exprs.append(f'("" if {value} is None else _K_{name} + {text})')
        else:
            literals.append(literal + ("," if i else "") + f'"{name}":')
            exprs.append(_field_expr(name, hints[name], value, ns, depth))
        literal = ""
    literals.append(tail)
    return literals, exprs


def _field_expr(name: str, hint: Any, ref: str, ns: dict[str, Any], depth: int) -> str:
    if depth == 1 and name in ("ts", "start") and hint is float:
        # A connection's start is its first packet's ts, the same float object: its
        # text (a float's repr is costly) is made once, kept in a local of the encoder.
        ts = ref.rsplit(".", 1)[0] + ".ts"
        exact = f"{ref}.__class__ is _float and -_inf < {ref} < _inf"
        text = f"(_repr({ref}) if {exact} else _d({ref}))"
        return f"(_ts := {text})" if name == "ts" else f"(_ts if {ref} is {ts} else {text})"
    if depth == 1 and name == "file" and hint is str:
        # Held with its text, so identity is safe: one capture file per run.
        return f"(_file[1] if {ref} is _file[0] else _file_text({ref}))"
    if name in _REPEATED_FIELDS and hint in (str, str | None):
        value = f"(_r.get({ref}) or _r_text({ref}))"
        return value if hint is str else f'("null" if {ref} is None else {value})'
    if name in _REPEATED_LISTS and hint == tuple[str, ...]:
        return f"(_r.get({ref}) or _r_text({ref}))"
    return _value_expr(hint, ref, ns, depth)


_FILE_TEXT: list[Any] = [None, "null"]
"""The last ``file`` value and its text (None's text is "null" too)."""


def _file_text(file: str) -> str:
    text = encode_basestring_ascii(file)
    _FILE_TEXT[:] = [file, text]
    return text


_REPEATED_FIELDS = frozenset(
    {"src", "dst", "transport", "qr", "service", "outcome", "ended_by", "closed_by", "app"}
    | {"what", "version", "cipher"}
)
"""Text fields whose values recur (addresses, names from a small set): their JSON texts
are looked up rather than encoded each time."""
_REPEATED_LISTS = frozenset({"flags", "alpn", "versions"})
"""Lists of texts drawn from a small set (DNS flags, ALPN ids), looked up likewise."""
TEXT_CACHE_SIZE = 4096
"""JSON texts of repeated field values kept (emptied when full)."""
_REPEATED_TEXTS: dict[str | tuple[str, ...], str] = {}


def _repeated_text(value: str | tuple[str, ...]) -> str:
    if isinstance(value, tuple):
        text = "[" + ",".join(map(encode_basestring_ascii, value)) + "]"
        exact = value.__class__ is tuple and all(item.__class__ is str for item in value)
    else:
        text = encode_basestring_ascii(value)
        exact = value.__class__ is str
    if exact:
        if len(_REPEATED_TEXTS) >= TEXT_CACHE_SIZE:
            _REPEATED_TEXTS.clear()
        _REPEATED_TEXTS[value] = text
    return text


def _value_expr(hint: Any, ref: str, ns: dict[str, Any], depth: int) -> str:
    """A Python expression giving the JSON text of ``ref``, a value of type ``hint``."""
    members = [m for m in _union_members(hint) if m is not type(None)]
    if len(members) < len(_union_members(hint)) and len(members) == 1:
        return f'("null" if {ref} is None else {_value_expr(members[0], ref, ns, depth)})'
    if hint is str:
        return f"_s({ref})"
    if hint is bool:
        return f'("true" if {ref} is True else "false" if {ref} is False else _d({ref}))'
    # An exact int or float is left for the f-string to format, with no call: its
    # str() is the repr json writes. A bool is an int too, but JSON spells it
    # differently; NaN/inf go the json way.
    if hint is int:
        return f"({ref} if {ref}.__class__ is _int else _d({ref}))"
    if hint is float:
        return f"({ref} if {ref}.__class__ is _float and -_inf < {ref} < _inf else _d({ref}))"
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            if args[0] is str:
                return f'("[" + ",".join(map(_s, {ref})) + "]")'
            item = f"_v{depth}"
            inner = _value_expr(args[0], item, ns, depth + 1)
            if args[0] is int or args[0] is float:
                inner = f"_str{inner}"  # join() takes only texts
            return f'("[" + ",".join([{inner} for {item} in {ref}]) + "]" if {ref} else "[]")'
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if depth == 1:
            return f"{_memo_encoder(hint, ns)}({ref})"
        # A %-template, not a nested f-string: f-strings cannot nest the same quotes.
        literals, exprs = _object_parts(hint, ref, ns, depth, "{", "}")
        template = f"_T{len(ns)}"
        ns[template] = "%s".join(literal.replace("%", "%%") for literal in literals)
        return f"({template} % ({', '.join(exprs)},))"
    return f"_generic({ref})"


MEMO_SIZE = 1024
"""Nested values whose JSON text is kept per encoder (emptied when full)."""


def _memo_encoder(cls: type, ns: dict[str, Any]) -> str:
    """Name (in ``ns``) of a function giving the JSON text of a ``cls`` value, remembered
    per object.

    A nested record such as Edns is shared: the DNS dissector hands out one object per
    distinct OPT record, so the same few objects recur in most messages and their text
    (a third of a DNS line's cost) is made once. The memo is keyed by identity and holds
    the object, so an id is never reused while its entry lives; the objects are frozen,
    so a text never goes stale.
    """
    name = f"_M{len(ns)}"
    literals, exprs = _object_parts(cls, "v", ns, 2, "{", "}")
    template = "%s".join(literal.replace("%", "%%") for literal in literals)
    local: dict[str, Any] = dict(ns)
    local["_template"] = template
    exec(f"def encode(v):\n    return _template % ({', '.join(exprs)},)", local)
    encode: Callable[[Any], str] = local["encode"]
    memo: dict[int, tuple[Any, str]] = {}

    def remembered(value: Any) -> str:
        hit = memo.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        text = encode(value)
        if len(memo) >= MEMO_SIZE:
            memo.clear()
        memo[id(value)] = (value, text)
        return text

    ns[name] = remembered
    return name
