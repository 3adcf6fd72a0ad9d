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
from dotaudit.model.findings import Confidence, Finding, Severity
from dotaudit.model.policy import ApprovedResolver, Policy
from tests.conftest import corpus_path
from tests.detection import detect
from tests.factories import certificate, dot_session_events, fed_detector, run_detectors

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
