"""Host names to addresses through the system resolver. Only names that never leave the
machine: localhost (/etc/hosts) and a name IDNA refuses before any lookup."""

from __future__ import annotations

import pytest

from dotaudit.probe.transport import Deadline, ProbeError, Transport


def test_localhost_resolves_to_loopback() -> None:
    found = Transport().resolve("localhost", Deadline(5.0))
    assert found and set(found) <= {"127.0.0.1", "::1"}
    assert len(found) == len(set(found))  # each address once


def test_unusable_name_is_a_resolve_error() -> None:
    with pytest.raises(ProbeError) as caught:
        Transport().resolve("a" * 64 + ".test", Deadline(5.0))  # a label over 63 octets
    assert caught.value.kind == "resolve"
    assert str(caught.value).startswith("resolving aaaa")
