"""Padding inference from record sizes.

Oracles: RFC 8467 §4.1 block sizes (128-octet queries, 468-octet responses), RFC 7858
§3.3 length prefix, and the record overheads of RFC 8446 §5.2 (TLS 1.3: 16-byte tag +
1 content-type byte), RFC 5288 (GCM: 8-byte explicit nonce + 16-byte tag) and RFC 7905
(ChaCha20-Poly1305: 16-byte tag). So a padded TLS 1.3 query record is 128 + 2 + 17 = 147
bytes and a response 468 + 2 + 17 = 487 (the lab's stubby capture, issue 4).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from dotaudit.detect import padding
from dotaudit.detect.base import Context
from dotaudit.detect.padding import (
    PaddingDetector,
    infer_padding,
    padded_fraction,
    record_overhead,
    window_consistent,
)
from dotaudit.detect.session_assembly import DotSession, DotSessionAssembled, DotSessionAssembler
from dotaudit.model.events import ConnectionSeen, Event, TlsRecord
from dotaudit.model.findings import MAX_FRAMES, Confidence, Severity
from dotaudit.model.policy import Policy
from tests.allocations import bytes_kept
from tests.conftest import ROOT, corpus_path
from tests.detection import detect
from tests.factories import (
    connection,
    dot_session_events,
    fed_detector,
    run_detectors,
    tls_records,
)


def _session(events: list[Event]) -> DotSession:
    assembler = DotSessionAssembler()
    done = [s for e in events if (s := assembler.feed(e)) is not None]
    assert len(done) == 1
    return done[0]


def test_tls13_padded_stubby_sizes() -> None:
    session = _session(
        dot_session_events(client_lengths=[147, 147, 147], server_lengths=[487, 487, 487])
    )
    result = infer_padding(session)
    assert result["verdict"] == "padded"
    assert result["client_padded_fraction"] == 1.0
    assert result["server_padded_fraction"] == 1.0
    assert result["distinct_sizes"] == 2
    assert result["client_sizes"] == [147, 147, 147]
    assert result["server_sizes"] == [487, 487, 487]
    assert result["client_block"] == 128 and result["server_block"] == 468


def test_tls13_unpadded() -> None:
    session = _session(
        dot_session_events(client_lengths=[61, 70, 58], server_lengths=[93, 140, 77])
    )
    result = infer_padding(session)
    assert result["verdict"] == "unpadded"
    assert result["client_padded_fraction"] == 0.0
    assert result["server_padded_fraction"] == 0.0
    assert result["distinct_sizes"] == 6


def test_padded_queries_but_unpadded_answers_is_unpadded() -> None:
    # Responses carry the query name too, so their sizes still reveal it.
    session = _session(dot_session_events(client_lengths=[147, 147], server_lengths=[93, 140]))
    result = infer_padding(session)
    assert result["verdict"] == "unpadded"
    assert result["client_padded_fraction"] == 1.0
    assert result["server_padded_fraction"] == 0.0


def test_multi_block_messages_are_consistent() -> None:
    # 256-octet query (2 blocks) and 936-octet answer (2 blocks).
    session = _session(dot_session_events(client_lengths=[275], server_lengths=[955]))
    assert infer_padding(session)["verdict"] == "padded"


def test_coalesced_messages_in_one_record() -> None:
    # Two padded queries in one record: 2 * (128 + 2) + 17 = 277; three: 3 * 130 + 17.
    session = _session(
        dot_session_events(client_lengths=[277, 407], server_lengths=[487, 487, 487, 487, 487])
    )
    result = infer_padding(session)
    assert result["client_padded_fraction"] == 1.0
    assert result["verdict"] == "padded"
    # 278 fits no number of prefixed 128-blocks.
    assert not window_consistent(278 - 17, 278 - 17, 128)


def test_split_message_across_records() -> None:
    # Length prefix alone (2 + 17 = 19) followed by the 128-octet body (128 + 17).
    session = _session(
        dot_session_events(client_lengths=[19, 145, 19, 145], server_lengths=[487, 487])
    )
    assert infer_padding(session)["client_padded_fraction"] == 1.0
    # TLS 1.2 GCM (24 bytes): prefix alone is 26, the body 152; no TLS 1.3 trimming.
    tls12 = _session(
        dot_session_events(
            version="TLSv1.2", client_lengths=[26, 152, 26, 152], server_lengths=[494, 494]
        )
    )
    result = infer_padding(tls12)
    assert result["client_padded_fraction"] == 1.0
    assert result["verdict"] == "padded"


def test_unpadded_records_are_not_joined_into_blocks() -> None:
    # 487 alone fits no 128-block, and three of them (3 * 470 = 1410 = 11 * 128 + 2) only
    # would if arbitrary records could be joined; only prefix-alone or full records can be.
    session = _session(dot_session_events(client_lengths=[147] * 3, server_lengths=[487] * 3))
    assert infer_padding(session)["server_block"] == 468
    unpadded = _session(dot_session_events(client_lengths=[87, 88, 79], server_lengths=[99]))
    assert infer_padding(unpadded)["client_padded_fraction"] == 0.0


def test_split_fragments_far_apart_are_not_joined() -> None:
    conn_events = dot_session_events(client_lengths=[19, 145], server_lengths=[487])
    conn = conn_events[-1]
    assert isinstance(conn, type(connection()))
    fwd = list(conn.tls_records_fwd)
    # Push the body fragment 5 s after the prefix: no longer one split message.
    fwd[-1] = tls_records([145], start_ts=fwd[-2].ts + 5.0, first_frame=fwd[-1].frame)[0]
    conn_events[-1] = connection(
        **{k: getattr(conn, k) for k in ("file", "frame", "ts", "src", "sport", "dst", "dport")},
        start=conn.start,
        end=conn.end,
        first_frame=conn.first_frame,
        last_frame=conn.last_frame,
        tls_records_fwd=tuple(fwd),
        tls_records_rev=conn.tls_records_rev,
    )
    result = infer_padding(_session(conn_events))
    assert result["client_padded_fraction"] == 0.0


def test_tls12_gcm_and_chacha_overheads() -> None:
    gcm = _session(
        dot_session_events(
            version="TLSv1.2",
            cipher="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            client_lengths=[154, 154],
            server_lengths=[494, 494],
        )
    )
    assert infer_padding(gcm)["verdict"] == "padded"
    # The same sizes under ChaCha20 (16 bytes overhead) are not padded.
    chacha = _session(
        dot_session_events(
            version="TLSv1.2",
            cipher="TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            client_lengths=[154, 154],
            server_lengths=[494, 494],
        )
    )
    assert infer_padding(chacha)["verdict"] == "unpadded"
    chacha_padded = _session(
        dot_session_events(
            version="TLSv1.2",
            cipher="TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            client_lengths=[146],
            server_lengths=[486],
        )
    )
    assert infer_padding(chacha_padded)["verdict"] == "padded"


def test_overheads() -> None:
    assert record_overhead("TLSv1.3", "TLS_AES_128_GCM_SHA256") == (17, 17)
    assert record_overhead("TLSv1.2", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384") == (24, 24)
    assert record_overhead("TLSv1.2", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256") == (16, 16)
    # CBC: explicit IV 16, HMAC-SHA1 20, padding 1..16.
    assert record_overhead("TLSv1.2", "TLS_RSA_WITH_AES_128_CBC_SHA") == (37, 52)
    assert record_overhead("TLSv1.2", "0x1234") is None
    assert record_overhead("TLSv1.2", "TLS_RSA_WITH_RC4_128_SHA") is None
    assert record_overhead(None, None) is None


def test_unknown_cipher_gives_unknown_verdict() -> None:
    session = _session(
        dot_session_events(
            version="TLSv1.2", cipher="0xabcd", client_lengths=[154], server_lengths=[494]
        )
    )
    result = infer_padding(session)
    assert result["verdict"] == "unknown"
    assert "overhead" in result["reason"]


def test_too_few_records_is_unknown() -> None:
    session = _session(dot_session_events(client_lengths=[], server_lengths=[]))
    result = infer_padding(session)
    assert result["verdict"] == "unknown"
    assert result["client_padded_fraction"] is None


def test_detector_aggregates_per_pair() -> None:
    events: list[Event] = []
    for cport in (40001, 40002, 40003):
        events += dot_session_events(
            cport=cport, client_lengths=[61, 70], server_lengths=[93, 140], ts=1000.0 + cport
        )
    events += dot_session_events(
        cport=40010, server="1.1.1.1", client_lengths=[147], server_lengths=[487], ts=2000.0
    )
    findings = {(f.id, f.server): f for f in fed_detector(PaddingDetector, events).finish()}
    assert set(findings) == {("DA-PAD-001", "9.9.9.9"), ("DA-PAD-002", "1.1.1.1")}
    unpadded = findings[("DA-PAD-001", "9.9.9.9")]
    assert unpadded.evidence["sessions"] == 3
    assert unpadded.evidence["sizes"] == [61, 70, 93, 140]
    assert unpadded.first_ts == 1000.0 + 40001
    assert unpadded.last_ts == 1000.0 + 40003 + 1.0
    assert unpadded.frames and unpadded.severity == Severity.MEDIUM
    assert unpadded.dedup_key == "DA-PAD-001|10.0.0.2|9.9.9.9"
    assert findings[("DA-PAD-002", "1.1.1.1")].severity == Severity.INFO


def test_severity_override_applies_to_padding_findings() -> None:
    policy = Policy(severity_overrides={"DA-PAD-001": Severity.HIGH})
    events = dot_session_events(client_lengths=[61], server_lengths=[93])
    (finding,) = run_detectors(events, policy, only=PaddingDetector).findings
    assert finding.severity == Severity.HIGH


def _corpus_sessions(path: Path) -> list[DotSession]:
    from dotaudit.pipeline import CaptureRun

    assembler = DotSessionAssembler()
    return [s for e in CaptureRun(path).events() if (s := assembler.feed(e)) is not None]


def test_corpus_android_private_dns_is_padded() -> None:
    # Oracle: the corpus manifest (TLS 1.2, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 per the
    # ServerHello) and RFC 8467: 154 = 128 + 2 + 24 and 494 = 468 + 2 + 24.
    path = corpus_path("ndpi/dot-android10-private-dns/googledns_android10.pcap")
    sessions = _corpus_sessions(path)
    results = [infer_padding(s) for s in sessions]
    busy = [r for r in results if r["client_records"] >= 10]
    assert len(busy) == 3
    for result in busy:
        assert result["verdict"] == "padded"
        assert set(result["client_sizes"]) == {154}
        assert result["server_block"] == 468
        assert result["server_padded_fraction"] >= 0.75
    # The two mid-stream flows (no handshake) carry no sizes that can be judged.
    assert sum(1 for r in results if r["verdict"] == "unknown") == 2


def test_corpus_dot_google_no_sni_is_unpadded() -> None:
    # TLS 1.2 ChaCha20 (16 bytes overhead): the client sends the 2-byte prefix alone
    # (18 = 2 + 16) and then 41- and 46-byte queries, which fit no 128-octet block.
    path = corpus_path("ndpi/dot-google-no-sni/dns_dot.pcap")
    (session,) = _corpus_sessions(path)
    result = infer_padding(session)
    assert result["verdict"] == "unpadded"
    assert result["client_padded_fraction"] == 0.0


@pytest.mark.parametrize("length", [147, 275, 403])
def test_window_consistent_exact_blocks(length: int) -> None:
    assert window_consistent(length - 17, length - 17, 128)
    assert not window_consistent(length - 16, length - 16, 128)


@pytest.mark.parametrize(
    ("low", "high", "consistent"),
    [(250, 258, True), (250, 257, False), (259, 259, False), (259, 260, True)],
)
def test_window_consistent_finds_the_first_padded_length_inside_a_wide_window(
    low: int, high: int, consistent: bool
) -> None:
    """Oracle: the docstring's arithmetic, by hand. With 128-byte blocks, one message is
    128·M + 2 bytes (130, 258, ...) and two are 128·M + 4 (260, ...); a window that
    starts off those values holds one only if it reaches the next."""
    assert window_consistent(low, high, 128) is consistent


def test_window_consistent_needs_a_block_per_message() -> None:
    """k messages take at least k blocks (M ≥ k): with 8-byte blocks, 12 bytes would be two
    messages in one block (8·1 + 2·2), which padding cannot make; 20 is two blocks."""
    assert not window_consistent(12, 12, 8)
    assert window_consistent(20, 20, 8)


# Lab sample captures. Oracle: each ``pcaps/*.truth.json`` records how the lab configured
# the client and resolver (``query_padding``/``response_padding`` block sizes, or null)
# for every exchange; an answered DoT exchange is padded exactly when both are set.
PCAPS = ROOT / "pcaps"


def _dot_exchanges() -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for truth_path in sorted(PCAPS.glob("*.truth.json")):
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        for exchange in truth.get("exchanges", []):
            if exchange.get("transport") == "dot" and exchange.get("expected") == "answered":
                out.append((PCAPS / truth["capture"], exchange))
    return out


EXCHANGES = _dot_exchanges()


def _sessions(path: Path) -> list[DotSession]:
    from dotaudit.pipeline import CaptureRun

    assembler = DotSessionAssembler()
    return [s for e in CaptureRun(path).events() if (s := assembler.feed(e)) is not None]


@pytest.mark.skipif(not EXCHANGES, reason="no lab sample captures in pcaps/")
@pytest.mark.parametrize(
    ("capture", "exchange"), EXCHANGES, ids=[f"{c.name}:{x['id']}" for c, x in EXCHANGES]
)
def test_padding_verdict_matches_lab_config(capture: Path, exchange: dict[str, Any]) -> None:
    if not capture.exists():
        pytest.skip(f"{capture} not present")
    sessions = [
        s
        for s in _sessions(capture)
        if s.server == exchange["server"]
        and s.sport == exchange["port"]
        and (exchange["client_addr"] is None or s.client == exchange["client_addr"])
        and s.sni == exchange["sni"]
    ]
    assert sessions, "no DoT session for this exchange"
    padded = bool(exchange["query_padding"]) and bool(exchange["response_padding"])
    for session in sessions:
        assert infer_padding(session)["verdict"] == ("padded" if padded else "unpadded")


# -- verdict thresholds, through every detector as `analyze` runs them -------------------
#
# A direction is padded when at least 3/4 of its DNS-carrying records fit its block, and
# unpadded below 1/2; in between the sizes are partly consistent and no verdict is given.
# TLS 1.3 sizes: a padded query record is 147 (128 + 2 + 17), a padded answer 487; 61 and
# 93 fit no block. Each session's other direction is fully padded, so one side decides.

PADDED_QUERY, UNPADDED_QUERY = 147, 61
PADDED_ANSWER, UNPADDED_ANSWER = 487, 93


def mixed_session(side: str, padded: int, total: int, **kw: Any) -> list[Event]:
    """One TLS 1.3 DoT session whose ``side`` has ``padded`` of ``total`` records padded."""
    if side == "client":
        client = [PADDED_QUERY] * padded + [UNPADDED_QUERY] * (total - padded)
        server = [PADDED_ANSWER] * total
    else:
        client = [PADDED_QUERY] * total
        server = [PADDED_ANSWER] * padded + [UNPADDED_ANSWER] * (total - padded)
    return dot_session_events(client_lengths=client, server_lengths=server, **kw)


def padding_findings(events: list[Event]) -> list[tuple[str, float | None, float | None]]:
    return [
        (f.id, f.evidence["client_padded_fraction"], f.evidence["server_padded_fraction"])
        for f in detect(events).findings
        if f.id.startswith("DA-PAD-")
    ]


@pytest.mark.parametrize("side", ["client", "server"])
@pytest.mark.parametrize(
    ("padded", "total", "verdict"),
    [
        (76, 100, "DA-PAD-002"),  # above 3/4: padded
        (3, 4, "DA-PAD-002"),  # exactly 3/4: padded
        (74, 100, None),  # just below 3/4: mixed, no verdict
        (51, 100, None),
        (2, 4, None),  # exactly 1/2: still mixed, not unpadded
        (49, 100, "DA-PAD-001"),  # below 1/2: unpadded
        (0, 4, "DA-PAD-001"),
    ],
)
def test_padding_fraction_boundaries(
    side: str, padded: int, total: int, verdict: str | None
) -> None:
    found = padding_findings(mixed_session(side, padded, total))
    fraction = padded / total
    if verdict is None:
        assert found == []
        return
    expected = (fraction, 1.0) if side == "client" else (1.0, fraction)
    assert found == [(verdict, *expected)]


def test_mixed_band_session_gets_no_verdict_but_its_reason() -> None:
    result = infer_padding(_session(mixed_session("client", 5, 8)))
    assert result["client_padded_fraction"] == 0.625
    assert result["verdict"] == "unknown"
    assert result["reason"] == "sizes are partly consistent with padding"


@pytest.mark.parametrize(
    ("client", "server", "verdict"),
    [
        ([154], [], None),  # one DNS-carrying record: too few to judge
        ([154], [494], "DA-PAD-002"),  # two: judged
        ([61], [], None),
        ([61], [93], "DA-PAD-001"),
    ],
)
def test_at_least_two_records_are_needed_for_a_verdict(
    client: list[int], server: list[int], verdict: str | None
) -> None:
    # TLS 1.2 GCM (24 bytes a record, no TLS 1.3 trimming): 154 and 494 are padded.
    events = dot_session_events(version="TLSv1.2", client_lengths=client, server_lengths=server)
    assert [f[0] for f in padding_findings(events)] == ([verdict] if verdict else [])


@pytest.mark.parametrize(
    ("client", "server", "confidence"),
    [(2, 1, "medium"), (2, 2, "high"), (3, 1, "high")],
)
def test_four_exactly_sized_records_give_high_confidence(
    client: int, server: int, confidence: str
) -> None:
    # TLS 1.2 GCM: an exact overhead (24), and no TLS 1.3 trimming of the answers.
    events = dot_session_events(
        version="TLSv1.2", client_lengths=[154] * client, server_lengths=[494] * server
    )
    assert detect(events).only("DA-PAD-002").confidence.label == confidence


def with_client_records(events: list[Event], records: list[TlsRecord]) -> list[Event]:
    *head, conn = events
    assert isinstance(conn, ConnectionSeen)
    return [*head, dataclasses.replace(conn, tls_records_fwd=tuple(records))]


@pytest.mark.parametrize(
    ("gap", "joined"),
    [(0.2 - 0.000001, True), (0.2 + 0.000001, False)],
    ids=["just-inside", "just-outside"],
)
def test_split_message_fragments_join_within_two_tenths_of_a_second(
    gap: float, joined: bool
) -> None:
    # TLS 1.2 GCM: the length prefix alone (2 + 24 = 26), then the 128-octet body (152).
    events = dot_session_events(version="TLSv1.2", client_lengths=[], server_lengths=[494])
    start = 1000.25
    prefix = TlsRecord(ts=start, frame=100, length=26, content_type=23)
    body = TlsRecord(ts=start + gap, frame=101, length=152, content_type=23)
    found = padding_findings(with_client_records(events, [prefix, body]))
    if joined:
        assert found == [("DA-PAD-002", 1.0, 1.0)]
    else:
        assert found == [("DA-PAD-001", 0.0, 1.0)]


@pytest.mark.parametrize(
    ("messages", "padded"),
    [(4, True), (5, False)],
)
def test_up_to_four_padded_messages_coalesce_in_one_record(messages: int, padded: bool) -> None:
    # TLS 1.3: k padded queries with their prefixes in one record are k * 130 + 17 long.
    # 5 * 130 = 650 is no sum of at most four prefixed 128-blocks (650 - 2k, k <= 4, is
    # never a multiple of 128).
    record = messages * (128 + 2) + 17
    events = dot_session_events(client_lengths=[record, 147], server_lengths=[487, 487])
    found = padding_findings(events)
    assert found == ([("DA-PAD-002", 1.0, 1.0)] if padded else [])  # 1/2: mixed band


def client_plaintexts(plaintexts: list[int]) -> list[Event]:
    """A TLS 1.2 GCM session (24 bytes a record) whose client records carry these DNS-stream
    lengths, back to back; the server sends one padded answer."""
    events = dot_session_events(version="TLSv1.2", client_lengths=[], server_lengths=[494])
    records = [
        TlsRecord(ts=1000.25 + i * 0.001, frame=100 + i, length=n + 24, content_type=23)
        for i, n in enumerate(plaintexts)
    ]
    return with_client_records(events, records)


# Two padded messages with their prefixes are 128 * M + 4 bytes. A message split over
# full records (16384 bytes, RFC 8446 §5.1) ends in a record of 132 bytes, which alone
# fits no padding (132 = 128 + 4 needs two messages of at least one block each).


@pytest.mark.parametrize(
    ("full_records", "fraction"),
    [(3, 1.0), (4, 0.8)],
)
def test_a_split_message_spans_at_most_four_records(full_records: int, fraction: float) -> None:
    # 3 full records + the rest: four records joined, all consistent. 4 full + the rest:
    # five would be needed from the first; the last four still join (16384 * 3 + 132).
    found = padding_findings(client_plaintexts([16384] * full_records + [132]))
    assert found == [("DA-PAD-002", fraction, 1.0)]


@pytest.mark.parametrize(
    ("first", "fraction"),
    [(16384, 1.0), (16383, 0.0)],
)
def test_only_a_full_record_may_end_in_mid_message(first: int, fraction: float) -> None:
    # The same 16516 bytes (128 * 129 + 4) either way: a record below the 16384-byte limit
    # was cut by the sender, so a message does not continue past it.
    found = padding_findings(client_plaintexts([first, 16516 - first]))
    verdict = "DA-PAD-002" if fraction >= 0.75 else "DA-PAD-001"
    assert found == [(verdict, fraction, 1.0)]


def test_infer_padding_reports_every_field_of_a_padded_session() -> None:
    session = _session(dot_session_events(client_lengths=[147, 275], server_lengths=[487, 955]))
    assert infer_padding(session) == {
        "verdict": "padded",
        "client_padded_fraction": 1.0,
        "server_padded_fraction": 1.0,
        "distinct_sizes": 4,
        "client_sizes": [147, 275],
        "server_sizes": [487, 955],
        "client_records": 2,
        "server_records": 2,
        "client_block": 128,
        "server_block": 468,
        "overhead": [17, 17],
        "confidence": "high",
        "reason": None,
    }


def test_infer_padding_without_records_says_why() -> None:
    # TLS 1.2 (no encrypted flight to strip) with no application data at all.
    session = _session(dot_session_events(version="TLSv1.2"))
    assert infer_padding(session) == {
        "verdict": "unknown",
        "client_padded_fraction": None,
        "server_padded_fraction": None,
        "distinct_sizes": 0,
        "client_sizes": [],
        "server_sizes": [],
        "client_records": 0,
        "server_records": 0,
        "client_block": None,
        "server_block": None,
        "overhead": [24, 24],
        "confidence": "low",
        "reason": "no DNS-carrying records",
    }


def test_infer_padding_names_the_version_and_cipher_it_cannot_size() -> None:
    unknown_cipher = _session(
        dot_session_events(version="TLSv1.2", cipher="0xabcd", client_lengths=[154])
    )
    result = infer_padding(unknown_cipher)
    assert result["reason"] == "record overhead unknown for TLSv1.2/0xabcd"
    assert result["overhead"] is None and result["client_records"] == 1
    no_server_hello = _session(
        dot_session_events(version="TLSv1.2", server_hello_seen=False, client_lengths=[154])
    )
    assert infer_padding(no_server_hello)["reason"] == (
        "record overhead unknown for unknown version/None"
    )


def test_infer_padding_one_record_or_answers_only_is_too_few() -> None:
    one = infer_padding(_session(dot_session_events(version="TLSv1.2", client_lengths=[154])))
    assert (one["verdict"], one["reason"]) == ("unknown", "too few DNS-carrying records")
    assert one["client_padded_fraction"] == 1.0 and one["client_block"] == 128
    assert one["confidence"] == "low"
    answers = infer_padding(
        _session(dot_session_events(version="TLSv1.2", server_lengths=[494, 494]))
    )
    assert (answers["verdict"], answers["reason"]) == ("unknown", "too few DNS-carrying records")
    assert answers["server_padded_fraction"] == 1.0 and answers["server_block"] == 468


def test_infer_padding_mixed_direction_is_unknown_with_its_reason() -> None:
    # Two of three queries padded (2/3: between 1/2 and 3/4), answers padded.
    session = _session(
        dot_session_events(client_lengths=[147, 147, 61], server_lengths=[487, 487, 487])
    )
    result = infer_padding(session)
    assert result["verdict"] == "unknown"
    assert result["reason"] == "sizes are partly consistent with padding"
    assert result["client_padded_fraction"] == 0.667  # rounded to three places
    assert result["client_block"] is None and result["server_block"] == 468
    assert result["confidence"] == "low"


def test_infer_padding_confidence_needs_an_exact_overhead() -> None:
    # CBC overhead is a range: the sizes fit, but only with medium confidence.
    cbc = _session(
        dot_session_events(
            version="TLSv1.2",
            cipher="TLS_RSA_WITH_AES_128_CBC_SHA",
            client_lengths=[130 + 37, 130 + 37],
            server_lengths=[470 + 37, 470 + 37],
        )
    )
    result = infer_padding(cbc)
    assert (result["verdict"], result["confidence"]) == ("padded", "medium")


@pytest.mark.parametrize(
    ("version", "cipher", "overhead"),
    [
        # Oracles: RFC 8446 §5.2 (tag 16 + type 1); RFC 5288 GCM (nonce 8 + tag 16);
        # RFC 6655 CCM (8 + 16) and CCM_8 (8 + 8); RFC 7905 ChaCha20-Poly1305 (tag 16);
        # RFC 5246 §6.2.3.2 CBC (IV 16 from TLS 1.1 on, none in 1.0; MAC; padding 1..16).
        ("TLSv1.3", None, (17, 17)),
        ("TLSv1.1", "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8", (16, 16)),
        ("TLSv1.0", "TLS_RSA_WITH_AES_128_CCM", (24, 24)),
        ("TLSv1.2", "tls_ecdhe_rsa_with_aes_128_gcm_sha256", (24, 24)),
        ("TLSv1.0", "TLS_RSA_WITH_AES_128_CBC_SHA", (21, 36)),
        ("TLSv1.1", "TLS_RSA_WITH_AES_256_CBC_SHA256", (49, 64)),
        ("TLSv1.2", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", (65, 80)),
        ("TLSv1.2", "TLS_RSA_WITH_AES_128_CBC_MD5", None),
        ("TLSv1.2", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", None),
        ("TLSv1.2", "TLS_RSA_WITH_AES_128_SHA", None),
        ("SSLv3", "TLS_RSA_WITH_AES_128_GCM_SHA256", None),
        ("TLSv1.2", None, None),
        ("TLSv1.2", "", None),
    ],
)
def test_record_overhead_per_version_and_cipher(
    version: str, cipher: str | None, overhead: tuple[int, int] | None
) -> None:
    assert record_overhead(version, cipher) == overhead


def _run_padding(events: list[Event], policy: Policy | None = None) -> PaddingDetector:
    return fed_detector(PaddingDetector, events, policy)


def test_padding_finding_evidence_in_full() -> None:
    first = dot_session_events(
        client_lengths=[147, 147], server_lengths=[487, 487], ts=1000.0, sni="b.example"
    )
    second = dot_session_events(
        cport=40001, client_lengths=[147, 147, 61], server_lengths=[487, 487, 487], ts=1010.0,
        sni="a.example",
    )  # fmt: skip
    third = dot_session_events(
        cport=40002, client_lengths=[147, 147], server_lengths=[487, 487], ts=990.0, sni=None
    )
    (finding,) = _run_padding([*first, *second, *third]).finish()
    # The second session is mixed (2 of 3 queries padded): no verdict, not counted.
    assert finding.id == "DA-PAD-002"
    assert finding.evidence == {
        "verdict": "padded",
        "sessions": 2,
        "records": 8,
        "sizes": [147, 487],
        "client_padded_fraction": 1.0,
        "server_padded_fraction": 1.0,
        "sni": ["b.example"],
    }
    assert finding.confidence is Confidence.HIGH
    assert (finding.client, finding.server, finding.file) == ("10.0.0.2", "9.9.9.9", "test.pcap")
    assert finding.first_ts == 990.0 and finding.last_ts == 1001.0


def test_padding_finding_fraction_is_the_mean_over_sessions() -> None:
    unpadded = dot_session_events(client_lengths=[61, 61], server_lengths=[93, 93])
    half = dot_session_events(
        cport=40001, client_lengths=[147, 61, 61, 61], server_lengths=[93, 93, 93, 93], ts=1005.0
    )
    third = dot_session_events(
        cport=40002, client_lengths=[147, 61, 61], server_lengths=[93, 93, 93], ts=1009.0
    )
    (finding,) = _run_padding([*unpadded, *half, *third]).finish()
    assert finding.id == "DA-PAD-001"
    # (0 + 0.25 + 0.333) / 3, each fraction rounded to three places first
    assert finding.evidence["client_padded_fraction"] == 0.194
    assert finding.evidence["server_padded_fraction"] == 0.0
    assert finding.evidence["records"] == 4 + 8 + 6


def test_padding_finding_confidence_is_medium_unless_every_session_is_high() -> None:
    high = dot_session_events(client_lengths=[147, 147], server_lengths=[487, 487])
    low_count = dot_session_events(
        cport=40001, client_lengths=[147], server_lengths=[487], ts=1003.0
    )
    (finding,) = _run_padding(high).finish()
    assert finding.confidence is Confidence.HIGH
    (finding,) = _run_padding([*high, *low_count]).finish()
    assert finding.confidence is Confidence.MEDIUM


def test_padding_pair_keeps_eight_snis_and_a_bounded_frame_sample() -> None:
    events: list[Event] = []
    for i in range(10):
        events += dot_session_events(
            cport=41000 + i, client_lengths=[147], server_lengths=[487], sni=f"n{i}.example",
            ts=1000.0 + i,
        )  # fmt: skip
    (finding,) = _run_padding(events).finish()
    assert finding.evidence["sni"] == sorted(f"n{i}.example" for i in range(8))
    assert finding.evidence["sessions"] == 10
    assert len(finding.frames) == MAX_FRAMES


def test_padding_pair_frames_are_the_handshake_and_first_four_records_each_way() -> None:
    events = dot_session_events(client_lengths=[147] * 6, server_lengths=[487] * 6)
    conn = events[-1]
    assert isinstance(conn, ConnectionSeen)
    (finding,) = _run_padding(events).finish()
    hello_frames = {e.frame for e in events[:2]}
    fwd = [r.frame for r in conn.tls_records_fwd[1:5]]  # after the client Finished
    rev = [r.frame for r in conn.tls_records_rev[-6:-2]]  # the first four answers
    expected = {conn.first_frame, conn.last_frame, *hello_frames, *fwd, *rev}
    assert set(finding.frames) == expected


def test_padding_pairs_cap_counts_dropped_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(padding, "MAX_PAIRS", 1)
    kept = dot_session_events(client_lengths=[147, 147], server_lengths=[487, 487])
    dropped = dot_session_events(
        client_lengths=[147, 147], server_lengths=[487, 487], server="1.1.1.1", ts=1002.0
    )
    again = dot_session_events(
        client_lengths=[147, 147], server_lengths=[487, 487], server="1.0.0.1", ts=1003.0
    )
    findings = _run_padding([*kept, *dropped, *again]).finish()
    assert [f.server for f in findings] == ["9.9.9.9"]
    assert findings[0].evidence["pairs_dropped"] == 2
    assert "pairs_dropped" not in _run_padding(kept).finish()[0].evidence


@pytest.mark.parametrize("distinct", [padding.SIZES_SAMPLE, padding.SIZES_SAMPLE + 4])
def test_padding_pair_lists_twenty_sizes(distinct: int) -> None:
    assert padding.SIZES_SAMPLE == 20
    half = distinct // 2
    client = [61 + n for n in range(half)]
    server = [93 + n for n in range(distinct - half)]
    events = dot_session_events(client_lengths=client, server_lengths=server)
    (finding,) = _run_padding(events).finish()
    assert finding.id == "DA-PAD-001"
    assert finding.evidence["sizes"] == sorted([*client, *server][:20])


def test_padding_pair_frames_stop_at_the_cap_as_sessions_come() -> None:
    # The frames of the sessions seen first fill the sample; a later session adds only
    # what room is left, even when its frames are lower (it began earlier, ended later).
    late = dot_session_events(cport=42000, client_lengths=[61] * 4, server_lengths=[93] * 4)
    early: list[Event] = []
    for n in range(4):
        early += dot_session_events(
            cport=41000 + n, client_lengths=[61] * 4, server_lengths=[93] * 4, ts=1001.0 + n
        )
    full = _run_padding(early)
    (alone,) = full.finish()
    assert len(alone.frames) == 48  # twelve of each session
    (finding,) = _run_padding([*early, *late]).finish()
    assert len(finding.frames) == MAX_FRAMES == 50
    assert set(alone.frames) <= set(finding.frames)


def test_fragments_exactly_two_tenths_of_a_second_apart_still_join() -> None:
    # The limit itself is inside: only a longer gap separates messages. Near the epoch
    # 0.45 - 0.25 is exactly the limit in floating point (at 1000 s it is not).
    events = dot_session_events(version="TLSv1.2", server_lengths=[494], ts=0.0)
    prefix = TlsRecord(ts=0.25, frame=100, length=26, content_type=23)
    body = TlsRecord(ts=0.45, frame=101, length=152, content_type=23)
    assert body.ts - prefix.ts == padding.SPLIT_GAP_S
    assert padding_findings(with_client_records(events, [prefix, body])) == [
        ("DA-PAD-002", 1.0, 1.0)
    ]


@pytest.mark.parametrize(
    ("body", "fraction"),
    [(127, 0.0), (128, 1.0), (129, 0.0)],
)
def test_a_split_message_is_padded_only_when_its_fragments_add_up_to_a_block(
    body: int, fraction: float
) -> None:
    # The prefix alone (2) and then the body: 2 + 128 is one padded query; a body one
    # octet short or long is not, though 129 + 2 is only one octet past 130.
    found = padding_findings(client_plaintexts([2, body]))
    verdict = "DA-PAD-002" if fraction >= 0.75 else "DA-PAD-001"
    assert found == [(verdict, fraction, 1.0)]


def test_fragments_are_not_joined_when_the_overhead_is_a_range() -> None:
    # AES-CBC with HMAC-SHA1 (TLS 1.1+): IV 16, MAC 20, CBC padding 1..16, so a record of
    # 16 + 16n bytes carries 16n - 36 .. 16n - 21 plaintext bytes. The prefix alone
    # (2 + 20 -> 32: 48 bytes) and an unpadded 110-byte query (130 -> 144: 160 bytes)
    # could sum to anything in 104..134, 130 among them: a coincidence, not padding.
    session = _session(
        dot_session_events(
            version="TLSv1.2",
            cipher="TLS_RSA_WITH_AES_128_CBC_SHA",
            client_lengths=[48, 160],
            server_lengths=[512],  # 470 + 20 -> 496: one padded answer
        )
    )
    result = infer_padding(session)
    assert result["overhead"] == [37, 52]
    assert result["client_padded_fraction"] == 0.0
    assert result["server_padded_fraction"] == 1.0
    assert result["verdict"] == "unpadded"


# 1410 octets (TLS 1.2 GCM record of 1434) are three prefixed 468-octet answers
# (3 * 470) and equally one prefixed 1408-octet query (11 * 128 + 2): both blocks fit.
BOTH_BLOCKS = 1410 + 24


def test_sizes_that_fit_both_blocks_are_credited_to_the_direction_s_own_block() -> None:
    overhead = (24, 24)
    records = list(tls_records([BOTH_BLOCKS, BOTH_BLOCKS]))
    assert padded_fraction(records, overhead, 128) == 1.0
    assert padded_fraction(records, overhead, 468) == 1.0
    answers = _session(
        dot_session_events(
            version="TLSv1.2", client_lengths=[154] * 6, server_lengths=[BOTH_BLOCKS] * 2
        )
    )
    result = infer_padding(answers)
    assert (result["verdict"], result["server_block"]) == ("padded", 468)
    queries = _session(
        dot_session_events(
            version="TLSv1.2", client_lengths=[BOTH_BLOCKS] * 2, server_lengths=[494, 494]
        )
    )
    result = infer_padding(queries)
    assert (result["verdict"], result["client_block"]) == ("padded", 128)


def test_no_records_are_no_evidence_of_padding() -> None:
    assert padded_fraction([], (17, 17), 128) == 0.0
    assert padded_fraction([], (37, 52), 468) == 0.0


@pytest.mark.parametrize(
    ("queries", "finding_id", "fraction"),
    [([154, 154], "DA-PAD-002", 1.0), ([61, 61], "DA-PAD-001", 0.0)],
)
def test_a_pair_whose_queries_got_no_answer_has_no_answer_fraction(
    queries: list[int], finding_id: str, fraction: float
) -> None:
    # Queries only (an unresponsive resolver): the verdict rests on the queries, and the
    # answers' fraction is absent, not a mean over no sessions.
    events = dot_session_events(version="TLSv1.2", client_lengths=queries)
    (finding,) = _run_padding(events).finish()
    assert finding.id == finding_id
    assert finding.evidence["client_padded_fraction"] == fraction
    assert finding.evidence["server_padded_fraction"] is None


def test_a_pair_with_full_samples_costs_about_a_kilobyte() -> None:
    """Up to ``MAX_PAIRS`` pairs live while a capture is read. With sets for their
    twenty sizes, eight SNIs and confidences, and each SNI a string of its own, a full
    pair cost about 4 KB; most of what is left is its 50 frames and its key."""
    pairs = 50
    assembled: list[DotSessionAssembled] = []
    for p in range(pairs):
        for k in range(8):
            events = dot_session_events(
                server=f"192.0.2.{p}",
                cport=40000 + k,
                client_lengths=[300 + 10 * k + n for n in range(3)],
                server_lengths=[700 + 10 * k + n for n in range(3)],
                sni="".join((f"n{k}", ".example")),
                ts=1000.0 + k,
            )
            session = _session(events)
            last = events[-1]
            assembled.append(
                DotSessionAssembled(
                    file=last.file, frame=last.frame, ts=last.ts, src=last.src,
                    sport=last.sport, dst=last.dst, dport=last.dport,
                    transport=last.transport, session=session, recent_plaintext=(),
                )
            )  # fmt: skip
    detector = padding.PaddingDetector(Context())

    def feed() -> None:
        for event in assembled:
            detector.on_event(event)

    held = bytes_kept(feed)
    findings = detector.finish()
    assert len(findings) == pairs
    assert all(len(f.evidence["sizes"]) == padding.SIZES_SAMPLE for f in findings)
    assert all(len(f.evidence["sni"]) == 8 for f in findings)
    assert all(len(f.frames) == MAX_FRAMES for f in findings)
    assert held / pairs < 1300


def test_padding_pair_lists_a_repeated_sni_once_and_still_keeps_eight() -> None:
    events: list[Event] = []
    snis = ["same.example"] * 3 + [f"n{i}.example" for i in range(10)]
    for i, sni in enumerate(snis):
        events += dot_session_events(
            cport=41000 + i, client_lengths=[147], server_lengths=[487], sni=sni, ts=1000.0 + i
        )
    (finding,) = _run_padding(events).finish()
    assert finding.evidence["sni"] == sorted(["same.example", *snis[3:10]])
    assert finding.evidence["sessions"] == len(snis)
