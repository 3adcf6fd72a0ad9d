"""A real client opening QUIC with a reserved version, recorded live in the lab: the SNI
its first Initial leaks is reported (the checks: test_dissect/test_quic_reserved_version)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.lab.capture import Capture
from tests.lab.lab import Lab
from tests.lab.quic_reserved import reserved_version_query
from tests.test_dissect.test_quic_reserved_version import check_reserved_version_capture

pytestmark = pytest.mark.lab


def test_reserved_version_initial_recorded_live(
    lab: Lab, lab_capture: Callable[..., Capture], tmp_path: Path
) -> None:
    doq = lab["doq"]
    cap = lab_capture("quic-reserved", bpf=f"udp and host {doq.address}")
    answer = reserved_version_query(doq.address, doq.tls_port, lab.ca, "www.lab.test")
    path = cap.stop()
    assert answer.answer, answer.to_text()
    check_reserved_version_capture(path, tmp_path, doq.tls_port)
