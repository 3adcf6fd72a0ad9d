"""Whose fact is an event: the client it belongs to, as the detectors group them.

A distributed run cuts a capture's events by client so that each client's whole timeline
reaches one detector run. That is exact only if every detector groups by the same
client this module names; ``tests/test_detect/test_partition.py`` runs each detector over
shares cut this way and checks that its findings equal one run over everything.
Facts that span clients (what a server sent to anyone) travel apart, as shared facts
(``Detector.shared_facts``).
"""

from __future__ import annotations

from dotaudit.detect.registry import DETECTORS
from dotaudit.detect.session_assembly import SESSION_SOURCES, SessionStage
from dotaudit.model.events import (
    DnsMessageSeen,
    Event,
    HostIdentitySeen,
    TlsAlertSeen,
    TlsCertificateSeen,
    TlsServerHelloSeen,
)


def client_of(event: Event) -> str:
    """The client address the event's fact belongs to.

    A DNS response and the server's half of a TLS handshake are sent *to* the client;
    every other record is sent by it (a connection record's ``src`` is its initiator).
    Host identity records belong to no one client: they all go to one share.
    """
    kind = type(event)
    if kind is HostIdentitySeen:
        # Which addresses are one machine is decided over every binding the capture
        # shows (detect/machines.py): all of them go to one share.
        return ""
    if kind is DnsMessageSeen:
        return event.dst if event.qr == "response" else event.src  # type: ignore[attr-defined]
    if kind is TlsServerHelloSeen or kind is TlsCertificateSeen:
        return event.dst
    if kind is TlsAlertSeen:
        return event.dst if event.from_server else event.src  # type: ignore[attr-defined]
    return event.src


SHARED_EVENT_TYPES: frozenset[type[Event]] = frozenset(
    {
        *SESSION_SOURCES,
        DnsMessageSeen,
        *(event_type for cls in DETECTORS for event_type in cls.event_types),
    }
    - SessionStage.emits
)
"""The event types some detector or the session stage reads: the others need not travel."""
