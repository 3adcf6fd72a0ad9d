"""The looked-up texts in the generated JSON-line encoders (file, addresses, names from a
small set, flag lists). Oracle: the standard library, as in test_event_encoding: a line
must be exactly ``json.dumps({**e.to_dict(), "schema": ...}, separators=(",", ":"))``,
whatever was looked up before it."""

from __future__ import annotations

import json

from dotaudit.model import events
from dotaudit.model.events import EVENTS_SCHEMA, TEXT_CACHE_SIZE, Event, event_json_line
from tests import factories as f


def _reference(event: Event) -> str:
    return json.dumps({**event.to_dict(), "schema": EVENTS_SCHEMA}, separators=(",", ":")) + "\n"


class _Text(str):
    """A str subclass: equal to and hashed like its plain twin."""


def test_cached_texts_stay_bounded_and_correct_past_the_cap() -> None:
    lines = []
    for i in range(TEXT_CACHE_SIZE * 2 + 7):
        event = f.dns_query(src=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", qr="query")
        lines.append((event_json_line(event), _reference(event)))
        assert len(events._REPEATED_TEXTS) <= TEXT_CACHE_SIZE
    assert all(got == want for got, want in lines)


def test_file_changing_between_events_is_followed() -> None:
    made = [f.dns_query(file=name) for name in ("a.pcap", "b.pcap", "a.pcap", 'q"\u2028.pcap')]
    assert [event_json_line(e) for e in made] == [_reference(e) for e in made]


def test_odd_values_in_looked_up_fields_match_json() -> None:
    odd: list[Event] = [
        f.dns_query(src=_Text("10.0.0.9"), qr=_Text("query")),
        f.dns_query(src="10.0.0.9", qr="query"),  # after its subclass twin was seen
        f.dns_query(flags=("rd", _Text("ad"))),
        f.dns_query(flags=("rd", "ad")),
        f.dns_query(flags=["rd"]),  # type: ignore[arg-type]
        f.dns_query(flags=("rd", 1)),  # type: ignore[arg-type]
        f.dns_query(flags=()),
        f.client_hello(alpn=("h2", "http/1.1"), versions=("TLSv1.3",)),
        f.connection(closed_by=None, app=None),
        f.anomaly(what='tcp_gap\n"x"'),
    ]
    for event in odd:
        assert event_json_line(event) == _reference(event), event


def test_connection_start_shares_the_ts_text_only_when_it_is_the_same_value() -> None:
    ts = 1714564800.001574
    made: list[Event] = [
        f.connection(ts=ts, start=ts),
        f.connection(ts=ts, start=ts + 1e-6),
        f.connection(ts=float("nan"), start=float("nan")),
        f.connection(ts=True, start=True),  # type: ignore[arg-type]
    ]
    nan = float("nan")
    made.append(f.connection(ts=nan, start=nan))
    for event in made:
        assert event_json_line(event) == _reference(event), event


def test_annotation_evaluation_matches_typing() -> None:
    import typing

    for cls in (events.Edns, events.TlsRecord, *events.Event.__subclasses__()):
        hints = typing.get_type_hints(cls)
        assert events._type_hints(cls) == {name: hints[name] for name in events._field_names(cls)}
