"""Passive DoT certificate checks. Oracles: RFC 6125 §6.4.3 (wildcard in the left-most
label only, one label), §6.4.4 (CN only without DNS SANs), RFC 5280 validity, and the
corpus manifest (nDPI: server cert CN=dns.google for ndpi/dot-google-no-sni)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from dotaudit.detect import dot_cert
from dotaudit.detect.base import Context
from dotaudit.detect.dot_cert import (
    DotCertDetector,
    certificate_problems,
    name_matches,
    parse_utc,
    wildcard_match,
)
from dotaudit.model.events import Event, TlsCertificateSeen
from dotaudit.model.findings import CATALOGUE, MAX_FRAMES, Confidence, Finding, Severity
from dotaudit.model.policy import ApprovedResolver, Policy
from tests.conftest import corpus_path
from tests.detection import detect
from tests.factories import (
    CLIENT,
    certificate,
    dot_session_events,
    fed_detector,
    run_detectors,
)

Y2020 = 1577836800.0  # 2020-01-01T00:00:00Z


def _run(events: list[Event], context: Context | None = None) -> list[Finding]:
    return fed_detector(DotCertDetector, events, context).finish()


def _tls12(**kw: Any) -> list[Event]:
    return dot_session_events(version="TLSv1.2", client_lengths=[154], server_lengths=[494], **kw)


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("dns.google", "dns.google", True),
        ("DNS.Google.", "dns.google", True),
        ("*.dns.google.com", "a.dns.google.com", True),
        ("*.dns.google.com", "dns.google.com", False),
        ("*.dns.google.com", "a.b.dns.google.com", False),
        ("*.com", "example.com", False),
        ("a.*.example.com", "a.b.example.com", False),
        ("f*.example.com", "foo.example.com", True),
        ("f*.example.com", "bar.example.com", False),
        ("*.example.com", "xn--bcher-kva.example.com", False),
        ("", "example.com", False),
    ],
)
def test_wildcard_match(pattern: str, host: str, expected: bool) -> None:
    assert wildcard_match(pattern, host) is expected


def test_name_matches_san_cn_and_ip() -> None:
    cert = certificate(san=("DNS:dns.quad9.net", "IP:9.9.9.9"), subject="CN=other.example")
    assert name_matches(cert, "dns.quad9.net")
    assert not name_matches(cert, "other.example")  # CN is ignored when SANs exist
    assert name_matches(cert, "9.9.9.9") and not name_matches(cert, "9.9.9.10")
    cn_only = certificate(san=(), subject="CN=dns.quad9.net,O=Quad9")
    assert name_matches(cn_only, "dns.quad9.net")


def test_validity_uses_capture_time() -> None:
    assert parse_utc("2020-01-01T00:00:00Z") == Y2020
    assert parse_utc("garbage") is None
    cert = certificate(not_before="2019-01-01T00:00:00Z", not_after="2020-01-01T00:00:00Z")
    assert certificate_problems(replace(cert, ts=Y2020 - 10), None, False) == []
    assert certificate_problems(replace(cert, ts=Y2020 + 10), None, False) == ["expired"]
    early = replace(cert, ts=Y2020 - 400 * 86400)
    assert certificate_problems(early, None, False) == ["not_yet_valid"]


def test_good_certificate_no_finding() -> None:
    assert _run(_tls12(certificates=[certificate()])) == []


def test_problems_aggregate_per_pair() -> None:
    def bad() -> TlsCertificateSeen:
        return certificate(
            san=("DNS:evil.example",),
            self_signed=True,
            not_after="1970-01-01T00:10:00Z",  # before the default ts of 1000 s
        )

    events = _tls12(cport=41000, certificates=[bad()]) + _tls12(cport=41001, certificates=[bad()])
    (finding,) = _run(events)
    assert finding.id == "DA-DOT-005"
    assert finding.evidence["reasons"] == ["expired", "name_mismatch", "self_signed"]
    assert finding.evidence["sessions"] == 2
    assert finding.evidence["sessions_with_problems"] == 2
    assert finding.evidence["leaf"]["sni"] == "dns.quad9.net"
    assert finding.severity == Severity.HIGH and finding.confidence == Confidence.HIGH
    assert len(finding.frames) == 4
    assert finding.client == "10.0.0.2" and finding.server == "9.9.9.9"


def test_no_sni_skips_name_check() -> None:
    cert = certificate(san=("DNS:other.example",))
    assert _run(_tls12(sni=None, certificates=[cert])) == []


def test_pinned_self_signed_is_accepted() -> None:
    cert = certificate(self_signed=True, spki_sha256="PIN=")
    policy = Policy(approved_dot=(ApprovedResolver(address="9.9.9.9", pins=("PIN=",)),))
    assert _run(_tls12(certificates=[cert]), Context(policy=policy)) == []
    (finding,) = _run(_tls12(certificates=[cert]))
    assert finding.evidence["reasons"] == ["self_signed"]


def test_issuer_change_is_interception_hint() -> None:
    events = _tls12(cport=42000, certificates=[certificate(issuer="CN=Real CA")])
    events += _tls12(
        cport=42001, client="10.0.0.3", certificates=[certificate(issuer="CN=Corp MITM")]
    )
    findings = _run(events)
    assert len(findings) == 2
    for finding in findings:
        assert finding.evidence["reasons"] == ["issuer_differs"]
        assert finding.confidence == Confidence.LOW
        assert finding.severity == Severity.MEDIUM
        assert set(finding.evidence["issuers"]) == {"CN=Real CA", "CN=Corp MITM"}
        assert finding.frames


def test_override_wins() -> None:
    policy = Policy(severity_overrides={"DA-DOT-005": Severity.LOW})
    events = _tls12(certificates=[certificate(self_signed=True)])
    (finding,) = run_detectors(events, policy, only=DotCertDetector).findings
    assert finding.severity == Severity.LOW


def test_corpus_certificates_valid_at_capture_time() -> None:
    # dns.google leaf valid 2019-10-10..2020-01-02, seen 2019-11-03: no finding, although
    # it is long expired by the wall clock.
    from dotaudit.pipeline import CaptureRun

    path = corpus_path("ndpi/dot-google-no-sni/dns_dot.pcap")
    assert _run(list(CaptureRun(path).events())) == []
    path = corpus_path("ndpi/dot-android10-private-dns/googledns_android10.pcap")
    assert _run(list(CaptureRun(path).events())) == []


# Validity at the moment the certificate crossed the wire (RFC 5280 §4.1.2.5: valid from
# notBefore to notAfter, both inclusive). factories.TS is 1000 s after the epoch.
AT_TS = "1970-01-01T00:16:40Z"


@pytest.mark.parametrize(
    ("not_before", "not_after", "seen_at", "problem"),
    [
        ("1970-01-01T00:00:00Z", AT_TS, 1000.0, None),  # seen at notAfter: still valid
        ("1970-01-01T00:00:00Z", AT_TS, 1000.000001, "expired"),
        (AT_TS, "2038-01-01T00:00:00Z", 1000.0, None),  # seen at notBefore: valid
        (AT_TS, "2038-01-01T00:00:00Z", 999.999999, "not_yet_valid"),
    ],
)
def test_validity_ends_are_inclusive(
    not_before: str, not_after: str, seen_at: float, problem: str | None
) -> None:
    leaf = certificate(not_before=not_before, not_after=not_after, ts=seen_at)
    detected = detect(_tls12(certificates=[leaf]))
    bad = detected.of("DA-DOT-005")
    if problem is None:
        assert bad == []
    else:
        (finding,) = bad
        assert finding.evidence["reasons"] == [problem]


def test_issuers_past_the_cap_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    assert dot_cert.MAX_ISSUERS == 8 and dot_cert.MAX_SERVERS == 10_000
    monkeypatch.setattr(dot_cert, "MAX_ISSUERS", 2)

    def sessions(issuers: int) -> list[Event]:
        events: list[Event] = []
        for i in range(issuers):
            events += _tls12(cport=42000 + i, certificates=[certificate(issuer=f"CN=CA {i}")])
        return events

    at_cap = fed_detector(DotCertDetector, sessions(2))
    at_cap.finish()
    assert at_cap.caps() == {}
    over = fed_detector(DotCertDetector, sessions(3))
    (finding,) = over.finish()
    assert set(finding.evidence["issuers"]) == {"CN=CA 0", "CN=CA 1"}
    assert over.caps() == {"dot_cert_issuers_full": 1}


def test_servers_past_the_cap_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dot_cert, "MAX_SERVERS", 1)
    leaf = [certificate()]
    events = _tls12(cport=42000, certificates=leaf)
    events += _tls12(cport=42001, server="198.51.100.77", certificates=leaf)
    detector = fed_detector(DotCertDetector, events)
    detector.finish()
    assert detector.caps() == {"dot_cert_servers_full": 1}


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("", "dns.example", False),
        ("dns.example", "", False),
        ("*.*.example.com", "a.*.example.com", False),  # a second wildcard, even if echoed
        ("**.example.com", "ab.example.com", False),
        ("xn--*.example.com", "xn--ab.example.com", False),  # never inside an A-label
        ("*.example.com", "xn--ab.example.com", False),
        ("f*o.example.com", "fo.example.com", True),  # the wildcard may match nothing
        ("f*o.example.com", "f.example.com", False),  # prefix and suffix cannot overlap
        ("f*.example.com", "xf.example.com", False),
        ("*o.example.com", "ox.example.com", False),
    ],
)
def test_wildcard_match_edges(pattern: str, host: str, expected: bool) -> None:
    assert wildcard_match(pattern, host) is expected


def test_name_matches_ip_literal_sni_in_brackets_and_skips_bad_ip_sans() -> None:
    cert = certificate(san=("IP:not-an-address", "IP:2001:db8::1", "DNS:dns.example"))
    assert name_matches(cert, "[2001:db8::1]")
    assert name_matches(cert, "2001:db8::1")
    assert not name_matches(cert, "2001:db8::2")


def test_name_matches_without_san_or_cn_is_false() -> None:
    cert = certificate(san=(), subject="O=No Common Name")
    assert not name_matches(cert, "dns.example")
    assert name_matches(certificate(san=(), subject="O=Org, CN=dns.example"), "dns.example")


def test_validity_boundaries_are_inclusive() -> None:
    # Valid from not_before through not_after, both instants included (RFC 5280 §4.1.2.5).
    cert = certificate(not_before="1970-01-01T00:16:40Z", not_after="1970-01-01T00:16:40Z")
    assert cert.ts == 1000.0
    assert certificate_problems(cert, None, pinned=False) == []
    assert certificate_problems(replace(cert, ts=1001.0), None, pinned=False) == ["expired"]
    assert certificate_problems(replace(cert, ts=999.0), None, pinned=False) == ["not_yet_valid"]


def test_dot_cert_finding_in_full() -> None:
    bad = certificate(
        san=tuple(f"DNS:n{i}.example" for i in range(25)),
        subject="CN=n0.example",
        self_signed=True,
        spki_sha256="KEY=",
    )
    good_first = _tls12(cport=41000, ts=900.0, certificates=[certificate(ts=900.0)])
    problem = _tls12(cport=41001, ts=1000.0, certificates=[bad])
    (finding,) = _run(good_first + problem)
    hello = problem[0]
    leaf = next(e for e in problem if isinstance(e, TlsCertificateSeen))
    assert finding.evidence == {
        "reasons": ["name_mismatch", "self_signed"],
        "sessions": 2,
        "sessions_with_problems": 1,
        "leaf": {
            "sni": "dns.quad9.net",
            "subject": "CN=n0.example",
            "issuer": bad.issuer,
            "san": [f"DNS:n{i}.example" for i in range(20)],
            "not_before": bad.not_before,
            "not_after": bad.not_after,
            "seen_at": leaf.ts,
            "spki_sha256": "KEY=",
            "self_signed": True,
            "pinned": False,
        },
    }
    assert finding.title == CATALOGUE["DA-DOT-005"].title
    assert finding.frames == tuple(sorted((hello.frame, leaf.frame)))
    assert finding.dedup_key == "DA-DOT-005|10.0.0.2|9.9.9.9"
    assert (finding.client, finding.server, finding.file) == ("10.0.0.2", "9.9.9.9", "test.pcap")
    assert (finding.first_ts, finding.last_ts) == (900.0 + 0.0, leaf.ts)


def test_dot_cert_issuer_hint_in_full() -> None:
    real = _tls12(cport=42000, certificates=[certificate(issuer="CN=Real CA")])
    mitm = _tls12(cport=42001, certificates=[certificate(issuer="CN=Corp MITM")])
    again = _tls12(cport=42002, certificates=[certificate(issuer="CN=Real CA")])
    (finding,) = _run(real + mitm + again)
    leaf_frames = [e.frame for e in (*real, *mitm, *again) if isinstance(e, TlsCertificateSeen)]
    assert finding.evidence == {
        "reasons": ["issuer_differs"],
        "sessions": 3,
        "sessions_with_problems": 0,
        "leaf": None,
        "issuers": {"CN=Corp MITM": 1, "CN=Real CA": 2},
    }
    assert finding.title == (
        "DoT certificate issuer differs between sessions (possible interception)"
    )
    assert finding.frames == tuple(sorted(leaf_frames))
    # A real problem as well: the catalogue's title and confidence, the problem frames.
    bad = _tls12(cport=42003, certificates=[certificate(issuer="CN=Other", self_signed=True)])
    (finding,) = _run(real + bad)
    assert finding.evidence["reasons"] == ["self_signed", "issuer_differs"]
    assert finding.confidence is Confidence.HIGH and finding.severity is Severity.HIGH


def test_dot_cert_issuer_count_is_capped_but_known_issuers_still_count() -> None:
    events: list[Event] = []
    for i in range(10):
        events += _tls12(cport=43000 + i, certificates=[certificate(issuer=f"CN=CA {i}")])
    events += _tls12(cport=43100, certificates=[certificate(issuer="CN=CA 0")])
    (finding,) = _run(events)
    issuers = finding.evidence["issuers"]
    assert len(issuers) == 8 and issuers["CN=CA 0"] == 2 and "CN=CA 9" not in issuers


def test_dot_cert_pairs_cap_counts_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dot_cert, "MAX_PAIRS", 1)
    first = _tls12(certificates=[certificate(self_signed=True)])
    second = _tls12(client="10.0.0.7", certificates=[certificate(self_signed=True)])
    detector = fed_detector(DotCertDetector, first + second)
    (finding,) = detector.finish()
    assert finding.client == "10.0.0.2" and finding.evidence["pairs_dropped"] == 1
    assert detector.caps() == {"dot_cert_pairs_full": 1}


def test_dot_cert_frames_stop_at_the_cap() -> None:
    events: list[Event] = []
    for i in range(MAX_FRAMES):
        events += _tls12(cport=44000 + i, certificates=[certificate(self_signed=True)])
    (finding,) = _run(events)
    assert finding.evidence["sessions_with_problems"] == MAX_FRAMES
    assert len(finding.frames) == MAX_FRAMES


def test_issuer_hint_lists_leaf_frames_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MAX_FRAMES == 50  # the cap dot_cert imports
    monkeypatch.setattr(dot_cert, "MAX_FRAMES", 2)
    real = _tls12(cport=46000, certificates=[certificate(issuer="CN=Real CA")])
    mitm = _tls12(cport=46001, certificates=[certificate(issuer="CN=Corp MITM")])
    again = _tls12(cport=46002, certificates=[certificate(issuer="CN=Real CA")])
    leaf_frames = [e.frame for e in (*real, *mitm, *again) if isinstance(e, TlsCertificateSeen)]
    (at_cap,) = _run(real + mitm)
    assert at_cap.evidence["reasons"] == ["issuer_differs"]
    assert at_cap.frames == tuple(leaf_frames[:2])
    (over,) = _run(real + mitm + again)
    assert over.evidence["sessions"] == 3
    assert over.frames == tuple(leaf_frames[:2])  # the third session's leaf is not listed


def test_dot_cert_only_the_leaf_is_judged() -> None:
    intermediate = certificate(position=1, self_signed=True, san=())
    assert _run(_tls12(certificates=[intermediate])) == []
    assert _run(_tls12(certificates=[intermediate, certificate()])) == []


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("a**.example.com", "ab*.example.com", False),  # two wildcards, even matching
        ("ab*ba.example.com", "aba.example.com", False),  # prefix and suffix overlap
        ("dns.teX", "dns.te", False),  # only dots are stripped, before lowering
    ],
)
def test_wildcard_match_more_edges(pattern: str, host: str, expected: bool) -> None:
    assert wildcard_match(pattern, host) is expected


def test_common_name_keeps_equals_signs_in_its_value() -> None:
    cert = certificate(san=(), subject="CN=odd=name")
    assert name_matches(cert, "odd=name")


def test_ip_literal_sni_only_loses_its_brackets() -> None:
    cert = certificate(san=("IP:192.0.2.1",))
    assert not name_matches(cert, "X192.0.2.1X")


def test_dot_cert_drops_are_counted_each() -> None:
    from dotaudit.detect import dot_cert as module

    original = module.MAX_PAIRS
    module.MAX_PAIRS = 1
    try:
        events = _tls12(certificates=[certificate(self_signed=True)])
        for client in ("10.0.0.7", "10.0.0.8"):
            events += _tls12(client=client, certificates=[certificate(self_signed=True)])
        (finding,) = _run(events)
    finally:
        module.MAX_PAIRS = original
    assert finding.evidence["pairs_dropped"] == 2


def test_dot_cert_frame_sample_keeps_the_first_sessions() -> None:
    # Frames past the sample are not kept, even smaller ones from a later file.
    events: list[Event] = []
    for i in range(MAX_FRAMES // 2):
        events += _tls12(cport=45000 + i, certificates=[certificate(self_signed=True)])
    late = _tls12(cport=45999, certificates=[certificate(self_signed=True)])
    late = [replace(e, frame=1) if isinstance(e, TlsCertificateSeen) else e for e in late]
    (finding,) = _run(events + late)
    assert 1 not in finding.frames and len(finding.frames) == MAX_FRAMES


# A distributed run feeds each share of the clients to a detector of its own, merges
# their ``shared_facts`` and has every share adopt the result before ``finish``: the
# merge must keep what one run over every client keeps, caps included.

OTHER_CLIENT = "10.0.0.3"
S1, S2, S3 = "9.9.9.9", "198.51.100.7", "198.51.100.8"


def _sessions(client: str, views: list[tuple[str, str]], port: int) -> list[Event]:
    """One TLS 1.2 session of ``client`` per (server, leaf issuer), in order."""
    events: list[Event] = []
    for n, (server, issuer) in enumerate(views):
        leaf = certificate(issuer=issuer)
        events += _tls12(client=client, server=server, cport=port + n, certificates=[leaf])
    return events


def _one_run_and_shares(
    shares: list[list[Event]],
) -> tuple[DotCertDetector, list[DotCertDetector]]:
    whole = fed_detector(DotCertDetector, [e for share in shares for e in share])
    return whole, [fed_detector(DotCertDetector, share) for share in shares]


def test_merged_issuers_are_what_one_run_over_every_client_keeps() -> None:
    first = _sessions(CLIENT, [(S1, "CN=A"), (S2, "CN=A"), (S1, "CN=B")], 42000)
    second = _sessions(OTHER_CLIENT, [(S2, "CN=A"), (S1, "CN=A"), (S1, "CN=C")], 43000)
    whole, shares = _one_run_and_shares([first, second])
    merged = DotCertDetector.merge_shared_facts([share.shared_facts() for share in shares])
    assert (
        merged
        == whole.shared_facts()
        == {
            ("test.pcap", S1): {"CN=A": 2, "CN=B": 1, "CN=C": 1},
            ("test.pcap", S2): {"CN=A": 2},
        }
    )
    # Each share alone sees S1 with fewer issuers; adopting the merge, both judge alike.
    for share in shares:
        share.adopt_shared_facts(merged)
    findings = sorted((f for share in shares for f in share.finish()), key=lambda f: f.client)
    assert [f.to_dict() for f in findings] == [
        f.to_dict() for f in sorted(whole.finish(), key=lambda f: f.client)
    ]
    assert {(f.client, f.server) for f in findings} == {(CLIENT, S1), (OTHER_CLIENT, S1)}


def test_merged_issuers_stop_at_the_caps_as_one_run_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dot_cert, "MAX_SERVERS", 2)
    monkeypatch.setattr(dot_cert, "MAX_ISSUERS", 2)
    # Each share stays within the caps; only together do S3 and CN=C find no room.
    first = _sessions(CLIENT, [(S1, "CN=A"), (S2, "CN=A"), (S1, "CN=B")], 42000)
    second = _sessions(OTHER_CLIENT, [(S3, "CN=A"), (S1, "CN=C"), (S1, "CN=A")], 43000)
    second += _sessions(OTHER_CLIENT, [(S1, "CN=A"), (S3, "CN=B"), (S1, "CN=C")], 43100)
    whole, shares = _one_run_and_shares([first, second])
    assert [share.caps() for share in shares] == [{}, {}]
    assert whole.caps() == {"dot_cert_servers_full": 2, "dot_cert_issuers_full": 2}
    merged = DotCertDetector.merge_shared_facts([share.shared_facts() for share in shares])
    assert (
        merged
        == whole.shared_facts()
        == {
            ("test.pcap", S1): {"CN=A": 3, "CN=B": 1},  # a known issuer still counts
            ("test.pcap", S2): {"CN=A": 1},
        }
    )
    # What the merge cut is counted by the share it was cut from, as the one run counts
    # it: the two sessions to S3, the two leaves of CN=C.
    for share in shares:
        share.adopt_shared_facts(merged)
    assert [share.caps() for share in shares] == [
        {},
        {"dot_cert_servers_full": 2, "dot_cert_issuers_full": 2},
    ]
    # S3's two issuers, seen by the second share alone, are not judged: one run kept no
    # room for S3 either.
    alone = fed_detector(DotCertDetector, second).finish()
    assert (OTHER_CLIENT, S3) in {(f.client, f.server) for f in alone}
    findings = [f.to_dict() for share in shares for f in share.finish()]
    assert findings == [f.to_dict() for f in whole.finish()]
    assert {(f["client"], f["server"]) for f in findings} == {(CLIENT, S1), (OTHER_CLIENT, S1)}


def test_a_share_keeps_counting_its_own_caps_after_adopting_the_merge(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dot_cert, "MAX_SERVERS", 1)
    share = fed_detector(DotCertDetector, _sessions(CLIENT, [(S1, "CN=A"), (S2, "CN=A")], 42000))
    other = fed_detector(DotCertDetector, _sessions(OTHER_CLIENT, [(S1, "CN=B")], 43000))
    assert share.caps() == {"dot_cert_servers_full": 1}
    merged = DotCertDetector.merge_shared_facts([share.shared_facts(), other.shared_facts()])
    share.adopt_shared_facts(merged)
    (finding,) = share.finish()
    assert finding.evidence["issuers"] == {"CN=A": 1, "CN=B": 1}
    assert share.caps() == {"dot_cert_servers_full": 1}


def test_shares_count_their_own_cuts_and_the_merge_s_as_one_run_counts_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dot_cert, "MAX_SERVERS", 2)
    monkeypatch.setattr(dot_cert, "MAX_ISSUERS", 1)
    other = _sessions(OTHER_CLIENT, [(S3, "CN=C"), (S1, "CN=C")], 43000)
    # This share cuts CN=B and S4 itself; the merge, with the other share first, cuts
    # CN=A at S1 and all of S2.
    own = _sessions(
        CLIENT, [(S1, "CN=A"), (S1, "CN=B"), (S2, "CN=A"), ("198.51.100.9", "CN=A")], 42000
    )
    whole, shares = _one_run_and_shares([other, own])
    assert shares[1].caps() == {"dot_cert_servers_full": 1, "dot_cert_issuers_full": 1}
    merged = DotCertDetector.merge_shared_facts([share.shared_facts() for share in shares])
    assert merged == whole.shared_facts()
    for share in shares:
        share.adopt_shared_facts(merged)
    expected = {"dot_cert_servers_full": 2, "dot_cert_issuers_full": 2}
    assert whole.caps() == expected
    assert [share.caps() for share in shares] == [{}, expected]
