"""Event batches: what a distributed run ships between processes must come back equal."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from dotaudit.model.event_codec import decode_events, encode_events
from dotaudit.model.events import ConnectionSeen, DnsMessageSeen
from dotaudit.pipeline import CaptureRun
from tests.conftest import ROOT

SAMPLES = sorted((ROOT / "pcaps").glob("*.pcap*"))


def _events(path: Path) -> list[object]:
    return list(CaptureRun(path, hash_input=False).events())


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize("compress", [True, False])
def test_samples_round_trip_equal(path: Path, compress: bool) -> None:
    events = _events(path)
    assert events
    decoded = decode_events(encode_events(events, compress=compress))  # type: ignore[arg-type]
    assert decoded == events
    assert [type(e) for e in decoded] == [type(e) for e in events]


def test_nested_records_come_back_as_records(mixed_capture: Path) -> None:
    events = _events(mixed_capture)
    decoded = decode_events(encode_events(events))  # type: ignore[arg-type]
    assert decoded == events
    # The mix has EDNS options and TLS record lists: nested records, not tuples.
    edns = [e for e in decoded if isinstance(e, DnsMessageSeen) and e.edns is not None]
    records = [e for e in decoded if isinstance(e, ConnectionSeen) and e.tls_records_fwd]
    assert edns and records
    assert type(edns[0].edns).__name__ == "Edns"
    assert type(records[0].tls_records_fwd[0]).__name__ == "TlsRecord"


def test_batches_are_smaller_than_pickled_records(mixed_capture: Path) -> None:
    events = _events(mixed_capture)
    encoded = encode_events(events)  # type: ignore[arg-type]
    pickled = pickle.dumps(events, protocol=5)
    # The measure of the shuffle: bytes per event (docs/scale.md).
    assert len(encoded) < len(pickled) / 2


def test_empty_batch() -> None:
    assert decode_events(encode_events([])) == []


@pytest.mark.parametrize(
    "names",
    [["builtins:dict"], ["dotaudit.model.events:Edns"], ["os:system"]],
    ids=["outside dotaudit", "not an event", "a function"],
)
def test_batch_naming_other_classes_is_refused(names: list[str]) -> None:
    import zlib

    data = pickle.dumps((1, names, [(0, "x")]), protocol=5)
    with pytest.raises(ValueError):
        decode_events(b"z" + zlib.compress(data))


def test_other_version_and_garbage_are_refused() -> None:
    data = pickle.dumps((99, [], []), protocol=5)
    with pytest.raises(ValueError, match="version"):
        decode_events(b"p" + data)
    with pytest.raises(ValueError, match="not an event batch"):
        decode_events(b"xjunk")
