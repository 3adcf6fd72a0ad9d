"""EDNS(0) padding compliance of DoT sessions, inferred from encrypted record sizes.

A padded DNS message (RFC 7830, block-length policy of RFC 8467 §4.1) is a multiple of
the block: 128 octets for queries, 468 for responses. Over DoT each message carries a
2-octet length prefix (RFC 7858 §3.3) and the record adds the cipher's overhead, so in
TLS 1.3 a padded single-message record is ``128·m + 2 + 17`` long (147, 275, ...).
Implementations may coalesce several messages into one record or split one message
across records, so both are accepted as consistent. A session whose sizes do not fit
any block leaks names through sizes; a padded one still leaks timing and counts.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dotaudit.detect.base import (
    CappedGroups,
    Context,
    Detector,
    FrameSample,
    NamePool,
    bitten,
)
from dotaudit.detect.session_assembly import TLS13_OVERHEAD, DotSession, DotSessionAssembled
from dotaudit.model.events import Event, TlsRecord
from dotaudit.model.findings import MAX_FRAMES, Confidence, Finding, make_finding

QUERY_BLOCK = 128
RESPONSE_BLOCK = 468
BLOCKS = (QUERY_BLOCK, RESPONSE_BLOCK)
LENGTH_PREFIX = 2
MAX_COALESCED = 4
"""Messages that one record may carry and still count as consistent."""
MAX_SPLIT = 4
"""Records that one split message may span."""
MAX_PLAINTEXT = 16384
"""A record this full was cut by the record size limit (RFC 8446 §5.1), not by the sender."""
SPLIT_GAP_S = 0.2
"""Fragments of one message leave back to back; a longer gap means separate messages."""
PADDED_MIN_FRACTION = 0.75
UNPADDED_MAX_FRACTION = 0.5
MIN_RECORDS = 2
SIZES_SAMPLE = 20
MAX_PAIRS = 10_000

AEAD_TLS12_OVERHEAD = {
    # explicit nonce + tag (RFC 5288, RFC 6655) / tag only (RFC 7905)
    "GCM": 8 + 16,
    "CCM_8": 8 + 8,
    "CCM": 8 + 16,
    "CHACHA20_POLY1305": 16,
}
CBC_MAC_SIZES = {"SHA384": 48, "SHA256": 32, "SHA": 20}
AES_BLOCK = 16

Window = tuple[int, int]
"""Possible DNS-stream plaintext lengths (prefix included) of a record: [low, high]."""


def record_overhead(version: str | None, cipher: str | None) -> Window | None:
    """Bytes a record adds to its plaintext, as a (min, max) range; None when unknown."""
    if version == "TLSv1.3":
        return (TLS13_OVERHEAD, TLS13_OVERHEAD)
    if version not in ("TLSv1.2", "TLSv1.1", "TLSv1.0") or not cipher:
        return None
    name = cipher.upper()
    for marker in ("CCM_8", "GCM", "CCM", "CHACHA20_POLY1305"):
        if f"_{marker}" in name:
            return (AEAD_TLS12_OVERHEAD[marker],) * 2
    if "_AES_" in name and "_CBC_" in name:
        # Explicit IV from TLS 1.1 on, then MAC and 1..16 bytes of CBC padding (the same
        # range whether the MAC is inside or after the encryption, RFC 7366).
        mac = next((size for suffix, size in CBC_MAC_SIZES.items() if name.endswith(suffix)), 0)
        if not mac:
            return None
        iv = 0 if version == "TLSv1.0" else AES_BLOCK
        return (iv + mac + 1, iv + mac + AES_BLOCK)
    return None


def window_consistent(low: int, high: int, block: int) -> bool:
    """Can some plaintext length in [low, high] be k padded messages with prefixes?

    k messages padded to ``block`` have ``Σ(block·m_i + 2) = block·M + 2k`` bytes, M ≥ k.
    """
    for k in range(1, MAX_COALESCED + 1):
        start = max(low, k * (block + LENGTH_PREFIX))
        candidate = start + (-(start - LENGTH_PREFIX * k)) % block
        if candidate <= high:
            return True
    return False


def padded_fraction(records: list[TlsRecord], overhead: Window, block: int) -> float:
    """Fraction of records consistent with ``block`` padding, joining split messages."""
    if not records:
        return 0.0
    exact = overhead[0] == overhead[1]
    windows = [(r.length - overhead[1], r.length - overhead[0]) for r in records]
    alone = [window_consistent(low, high, block) for low, high in windows]
    consistent = 0
    i = 0
    while i < len(records):
        if alone[i]:
            consistent += 1
            i += 1
            continue
        joined = _split_run(records, windows, alone, i, block) if exact else 0
        if joined:
            consistent += joined
            i += joined
        else:
            i += 1
    return consistent / len(records)


def _split_run(
    records: list[TlsRecord], windows: list[Window], alone: list[bool], i: int, block: int
) -> int:
    """Length of a run of fragments from ``i`` that together are padded messages, or 0."""
    low, high = windows[i]
    for j in range(i + 1, min(i + MAX_SPLIT, len(records))):
        # Only a lone length prefix or a full record can end in mid-message: a sender
        # writes whole messages otherwise, so joining other fragments would only find
        # coincidences.
        if not _fragment_boundary(windows[j - 1]):
            return 0
        if alone[j] or records[j].ts - records[j - 1].ts > SPLIT_GAP_S:
            return 0
        low += windows[j][0]
        high += windows[j][1]
        if window_consistent(low, high, block):
            return j - i + 1
    return 0


def _fragment_boundary(window: Window) -> bool:
    low, high = window
    return low <= LENGTH_PREFIX <= high or high >= MAX_PLAINTEXT


def _direction_state(fractions: dict[int, float], rfc_block: int) -> tuple[str, int | None]:
    # On a tie the RFC 8467 block for this direction wins.
    block, best = max(fractions.items(), key=lambda item: (item[1], item[0] == rfc_block))
    if best >= PADDED_MIN_FRACTION:
        return "padded", block
    if best < UNPADDED_MAX_FRACTION:
        return "unpadded", None
    return "mixed", None


def infer_padding(session: DotSession) -> dict[str, Any]:
    """Padding verdict of one DoT session from its application-data record sizes.

    Keys: ``verdict`` (padded/unpadded/unknown), ``client_padded_fraction`` (128-octet
    blocks), ``server_padded_fraction`` (468-octet blocks; both None without records),
    ``distinct_sizes``, capped ``client_sizes``/``server_sizes``, record counts, the
    blocks that fit each direction, ``overhead`` and ``confidence``.
    """
    client = session.app_records(from_client=True)
    server = session.app_records(from_client=False)
    version = session.version
    cipher = session.server_hello.cipher if session.server_hello else None
    overhead = record_overhead(version, cipher)
    out: dict[str, Any] = {
        "verdict": "unknown",
        "client_padded_fraction": None,
        "server_padded_fraction": None,
        "distinct_sizes": len({r.length for r in client} | {r.length for r in server}),
        "client_sizes": [r.length for r in client[:SIZES_SAMPLE]],
        "server_sizes": [r.length for r in server[:SIZES_SAMPLE]],
        "client_records": len(client),
        "server_records": len(server),
        "client_block": None,
        "server_block": None,
        "overhead": None if overhead is None else list(overhead),
        "confidence": "low",
        "reason": None,
    }
    if not client and not server:
        out["reason"] = "no DNS-carrying records"
        return out
    if overhead is None:
        out["reason"] = f"record overhead unknown for {version or 'unknown version'}/{cipher}"
        return out
    states: list[str] = []
    for side, records, rfc_block in (
        ("client", client, QUERY_BLOCK),
        ("server", server, RESPONSE_BLOCK),
    ):
        if not records:
            continue
        fractions = {block: padded_fraction(records, overhead, block) for block in BLOCKS}
        out[f"{side}_padded_fraction"] = round(fractions[rfc_block], 3)
        state, block = _direction_state(fractions, rfc_block)
        out[f"{side}_block"] = block
        states.append(state)
    if len(client) + len(server) < MIN_RECORDS or not client:
        out["reason"] = "too few DNS-carrying records"
        return out
    if "unpadded" in states:
        out["verdict"] = "unpadded"
    elif all(state == "padded" for state in states):
        out["verdict"] = "padded"
    else:
        out["reason"] = "sizes are partly consistent with padding"
        return out
    exact = overhead[0] == overhead[1]
    out["confidence"] = "high" if exact and len(client) + len(server) >= 4 else "medium"
    return out


@dataclass(slots=True)
class _PairAggregate:
    """What the sessions of one (file, client, server, verdict) showed; the key names them.

    Up to ``MAX_PAIRS`` of these live while a capture is read, so the short samples are
    an array and lists rather than sets: a set's table cost over a kilobyte a pair."""

    sessions: int = 0
    records: int = 0
    first_ts: float = 0.0
    last_ts: float = 0.0
    frames: FrameSample = field(default_factory=lambda: FrameSample(MAX_FRAMES))
    sizes: array[int] = field(default_factory=lambda: array("H"))
    """The first ``SIZES_SAMPLE`` distinct record lengths (a TLS record's length field
    is 16 bits)."""
    snis: list[str] = field(default_factory=list)
    """The first eight distinct SNIs."""
    all_high: bool = True
    """Whether every session's verdict was of high confidence."""
    client_fraction_sum: float = 0.0
    client_fraction_count: int = 0
    server_fraction_sum: float = 0.0
    server_fraction_count: int = 0
    """Per side, the padded fractions of the sessions, summed for their mean."""

    def add(self, session: DotSession, padding: dict[str, Any], names: NamePool) -> None:
        first = session.start
        last = session.end or session.start
        if self.sessions == 0 or first < self.first_ts:
            self.first_ts = first
        self.last_ts = max(self.last_ts, last)
        self.sessions += 1
        self.records += padding["client_records"] + padding["server_records"]
        if padding["confidence"] != "high":
            self.all_high = False
        sizes = self.sizes
        for size in (*padding["client_sizes"], *padding["server_sizes"]):
            if len(sizes) < SIZES_SAMPLE and size not in sizes:
                sizes.append(size)
        if session.sni and len(self.snis) < 8 and session.sni not in self.snis:
            self.snis.append(names.share(session.sni))
        fraction = padding["client_padded_fraction"]
        if fraction is not None:
            self.client_fraction_sum += fraction
            self.client_fraction_count += 1
        fraction = padding["server_padded_fraction"]
        if fraction is not None:
            self.server_fraction_sum += fraction
            self.server_fraction_count += 1
        if len(self.frames) < MAX_FRAMES:
            frames = session.frames()
            for record in session.app_records(from_client=True)[:4]:
                frames.append(record.frame)
            for record in session.app_records(from_client=False)[:4]:
                frames.append(record.frame)
            for frame in frames:
                self.frames.add(frame)


def _mean(total: float, count: int) -> float | None:
    return round(total / count, 3) if count else None


class PaddingDetector(Detector):
    name: ClassVar[str] = "padding"
    event_types: ClassVar[frozenset[type[Event]]] = frozenset({DotSessionAssembled})

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self._pairs: CappedGroups[tuple[str, str, str, str], _PairAggregate] = CappedGroups(
            MAX_PAIRS
        )

    def on_event(self, event: Event) -> None:
        if not isinstance(event, DotSessionAssembled):
            return
        session = event.session
        padding = infer_padding(session)
        verdict = padding["verdict"]
        if verdict == "unknown":
            return
        key = (session.file, session.client, session.server, verdict)
        pair = self._pairs.get(key)
        if pair is None:
            pair = self._pairs.add(key, _PairAggregate())
            if pair is None:
                return
        pair.add(session, padding, self.context.track.names)

    def caps(self) -> dict[str, int]:
        return bitten({"padding_pairs_full": self._pairs.dropped})

    def finish(self) -> list[Finding]:
        findings: list[Finding] = []
        for (file, client, server, verdict), pair in self._pairs.items():
            finding_id = "DA-PAD-001" if verdict == "unpadded" else "DA-PAD-002"
            confidence = Confidence.HIGH if pair.all_high else Confidence.MEDIUM
            evidence: dict[str, Any] = {
                "verdict": verdict,
                "sessions": pair.sessions,
                "records": pair.records,
                "sizes": sorted(pair.sizes),
                "client_padded_fraction": _mean(
                    pair.client_fraction_sum, pair.client_fraction_count
                ),
                "server_padded_fraction": _mean(
                    pair.server_fraction_sum, pair.server_fraction_count
                ),
                "sni": sorted(pair.snis),
            }
            if self._pairs.dropped:
                evidence["pairs_dropped"] = self._pairs.dropped
            findings.append(
                make_finding(
                    finding_id,
                    dedup_key=f"{client}|{server}",
                    confidence=confidence,
                    client=client,
                    server=server,
                    evidence=evidence,
                    frames=pair.frames,
                    first_ts=pair.first_ts,
                    last_ts=pair.last_ts,
                    file=file,
                )
            )
        return findings
