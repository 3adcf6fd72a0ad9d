"""The record classes' generated ``__init__`` (dotaudit.model.events._record). Oracle: the
behaviour of a ``dataclasses`` frozen, keyword-only dataclass (signature, defaults,
immutability, subclass instances, equality)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from dotaudit.model import events
from dotaudit.model.events import ConnectionSeen, Edns, TlsRecord


def test_signature_and_defaults_are_the_dataclass_ones() -> None:
    params = inspect.signature(Edns).parameters
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    assert [n for n, p in params.items() if p.default is inspect.Parameter.empty] == [
        "udp_size",
        "do",
    ]
    for field in dataclasses.fields(Edns):
        if field.default is not dataclasses.MISSING:
            assert params[field.name].default == field.default
    with pytest.raises(TypeError):
        Edns(1, False)  # type: ignore[misc]
    with pytest.raises(TypeError):
        Edns(udp_size=1)  # type: ignore[call-arg]


def test_subclass_instances_are_filled_and_frozen() -> None:
    class Marked(TlsRecord):
        __slots__ = ()

    record = Marked(ts=1.5, frame=2, length=3, content_type=23)
    assert type(record) is Marked
    assert (record.ts, record.frame, record.length, record.content_type) == (1.5, 2, 3, 23)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.frame = 9  # type: ignore[misc]
    assert ConnectionSeen.__init__.__qualname__ == "ConnectionSeen.__init__"


def test_a_shape_the_generator_does_not_handle_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class Positional:
        a: int

    with pytest.raises(TypeError):
        events._fast_init(Positional)


def test_event_classes_are_every_record_type_the_command_knows() -> None:
    from dotaudit.cli.events import EVENT_TYPES
    from dotaudit.model import events

    public = {c for c in events.Event.__subclasses__() if getattr(events, c.__name__, None) is c}
    assert set(events.EVENT_CLASSES) == public
    assert sorted(c.type for c in events.EVENT_CLASSES) == sorted(EVENT_TYPES)
