"""The generated JSON-line encoders and hot-path builders in dotaudit.model.events.

Oracle: the standard library. ``event_json_line(e)`` must be exactly
``json.dumps({**e.to_dict(), "schema": EVENTS_SCHEMA}, separators=(",", ":")) + "\\n"``
(the documented ``dotaudit events`` line), and an object made with ``builder(cls)`` must
equal, hash like and stay as immutable as one made by calling ``cls(...)``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest

from dotaudit.model import events
from dotaudit.model.events import (
    EVENTS_SCHEMA,
    MEMO_SIZE,
    ConnectionSeen,
    Edns,
    Event,
    HttpRequestSeen,
    TlsRecord,
    builder,
    event_json_line,
)
from tests import factories as f

HOSTILE = (
    'quote" back\\slash',
    "ctl \x00\x01\x1f\x7f tab\t nl\n cr\r",
    "unicode é ü 漢字 \u2028\u2029 emoji \U0001f600",
    "lone surrogate \ud800",
    "",
    "%s %d %% {} {0}",
)


def _reference(event: Event) -> str:
    record = event.to_dict()
    record["schema"] = EVENTS_SCHEMA
    return json.dumps(record, separators=(",", ":")) + "\n"


def _http_request(**kw: Any) -> HttpRequestSeen:
    values: dict[str, Any] = dict(
        file="t.pcap", frame=3, ts=5.5, src="10.0.0.2", sport=4000, dst="10.0.0.3",
        dport=80, transport="tcp", method="POST", authority="doh.example", path="/dns-query",
        content_type="application/dns-message", stream=1,
    )  # fmt: skip
    values.update(kw)
    return HttpRequestSeen(**values)


def _one_of_each(text: str = "x", ts: float = 1000.25) -> list[Event]:
    edns = f.edns(padding=128, keepalive=-1, ecs=text, nsid=text, options=(12, 11, 8, 3))
    return [
        f.dns_query(qname=text, edns=edns, ts=ts, flags=("rd", "ad")),
        f.dns_query(qname=None, qtype=None, edns=None, file=text),
        f.dns_response(qname=text, src=text),
        f.client_hello(sni=text, alpn=(text, "h2"), versions=(text,), ja4=text, ts=ts),
        f.client_hello(sni=None, alpn=()),
        f.server_hello(alpn=None, cipher=text),
        f.certificate(subject=text, issuer=text, san=(text, text), signature_algorithm=None),
        f.alert(description_name=text),
        f.quic_initial(sni=text, alpn=(text,), dcid=text, ts=ts),
        f.connection(records_fwd=[100, 200], records_rev=[468], closed_by=None, app=text),
        f.connection(tls_records_fwd=(TlsRecord(ts=ts, frame=1, length=2, content_type=23),)),
        f.anomaly(detail=text, what=text),
        _http_request(authority=text, path=text, content_type=None),
    ]


def test_every_event_class_is_covered() -> None:
    covered = {type(e) for e in _one_of_each()}
    # The module's own classes (slots=True leaves stale pre-slots classes in the list).
    public = {c for c in Event.__subclasses__() if getattr(events, c.__name__, None) is c}
    assert covered == public


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_line_equals_json_dumps_for_every_event_type(text: str) -> None:
    for event in _one_of_each(text):
        line = event_json_line(event)
        assert line == _reference(event), type(event).__name__
        assert json.loads(line)["type"] == event.type


@pytest.mark.parametrize("ts", [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e300, 5e-324, 0.1])
def test_special_and_extreme_floats_follow_json(ts: float) -> None:
    for event in _one_of_each(ts=ts):
        assert event_json_line(event) == _reference(event), type(event).__name__


def test_values_off_their_annotation_take_the_generic_way() -> None:
    # A bool where an int belongs, an int where a float belongs, a float where an int
    # belongs, a list where a tuple belongs: JSON spells each differently.
    odd: list[Event] = [
        f.dns_query(frame=True, ts=7, qtype=False, ancount=2.5),
        f.dns_query(flags=["rd"], edns=f.edns(udp_size=True, options=[1, 2])),  # type: ignore[arg-type]
        f.connection(bytes_fwd=10**30, syn_retransmits=-1, start=1),
    ]
    for event in odd:
        assert event_json_line(event) == _reference(event)


def test_shared_nested_record_is_encoded_from_its_own_values() -> None:
    # Equal-but-distinct and identical Edns objects, in turn, and new ones made after old
    # ones are gone (ids get reused): each line must still show its own record.
    lines = []
    for size in range(MEMO_SIZE * 2 + 10):
        edns = Edns(udp_size=size % 700, do=bool(size & 1), padding=size)
        event = f.dns_query(edns=edns)
        lines.append((event_json_line(event), _reference(event)))
        del edns, event
    assert all(got == want for got, want in lines)
    shared = f.edns(udp_size=4096)
    events = [f.dns_query(edns=shared, qname=str(i)) for i in range(5)]
    assert [event_json_line(e) for e in events] == [_reference(e) for e in events]


def _fields(obj: Any) -> dict[str, Any]:
    return {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)}


@pytest.mark.parametrize("original", [*_one_of_each("é\x00"), f.edns(ecs="1.2.3.0/24")])
def test_builder_objects_equal_constructed_ones(original: Any) -> None:
    cls = type(original)
    made = builder(cls)()
    for name, value in _fields(original).items():
        setattr(made, name, value)
    made.__class__ = cls
    assert type(made) is cls
    assert made == original
    assert hash(made) == hash(original) if _hashable(original) else True
    assert made.to_dict() == original.to_dict() if isinstance(made, Event) else True
    first = dataclasses.fields(original)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, first, _different(getattr(original, first)))
    # A builder object that differs in one field must not compare equal.
    other = builder(cls)()
    for name, value in _fields(original).items():
        setattr(other, name, value)
    setattr(other, first, _different(getattr(original, first)))
    other.__class__ = cls
    assert other != original


def test_builder_for_records() -> None:
    record = builder(TlsRecord)()
    record.ts, record.frame, record.length, record.content_type = 1.5, 2, 3, 23
    record.__class__ = TlsRecord
    assert record == TlsRecord(ts=1.5, frame=2, length=3, content_type=23)
    assert hash(record) == hash(TlsRecord(ts=1.5, frame=2, length=3, content_type=23))


def _hashable(obj: Any) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True


def _different(value: Any) -> Any:
    if isinstance(value, str):
        return value + "!"
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    return None


def test_bypassed_after_is_written_only_when_set() -> None:
    """The field is there on the connection records it concerns; a run without bypass
    writes exactly what it always wrote (oracle: json.dumps of to_dict)."""
    common = dict(
        file="f", frame=1, ts=1.5, src="a", sport=1, dst="b", dport=2, transport="tcp",
        outcome="established", start=1.5, end=2.5, first_frame=1, last_frame=9,
        packets_fwd=3, packets_rev=4, bytes_fwd=5, bytes_rev=6,
    )  # fmt: skip
    for value in (None, 7):
        for tunnel in (None, "vxlan:42"):
            event = ConnectionSeen(**common, tunnel=tunnel, bypassed_after=value)  # type: ignore[arg-type]
            line = event_json_line(event)
            assert line == _reference(event)
            assert ('"bypassed_after":7' in line) == (value == 7)
            assert ("bypassed_after" in line) == (value is not None)
            assert ('"tunnel"' in line) == (tunnel is not None)


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_tunnel_field_follows_transport_when_set(text: str) -> None:
    for plain in _one_of_each():
        event = dataclasses.replace(plain, tunnel=text)
        line = event_json_line(event)
        assert line == _reference(event), type(event).__name__
        keys = list(json.loads(line))
        assert keys[keys.index("transport") + 1] == "tunnel"
        assert json.loads(line)["tunnel"] == text


def test_tunnel_field_absent_when_not_tunnelled() -> None:
    """Facts of traffic that was not tunnelled keep exactly their former shape."""
    for event in _one_of_each():
        assert event.tunnel is None
        assert '"tunnel"' not in event_json_line(event)
        assert "tunnel" not in event.to_dict()
