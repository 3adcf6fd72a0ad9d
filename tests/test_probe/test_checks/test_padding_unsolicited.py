"""padding.unsolicited: the padded Unbound pads only when asked (RFC 7830 §4: no
padding, not even an OPT record, for a query without EDNS(0)). Oracle: the lab's
Unbound configuration (tests/lab/unbound.py pads responses to padded queries only)."""

from __future__ import annotations

import pytest

from dotaudit.probe.runner import TargetResult
from tests.test_probe.lab_probe import evidence, status

pytestmark = pytest.mark.lab


def test_padded_unbound_pads_only_when_asked(padded_audit: TargetResult) -> None:
    assert status(padded_audit, "padding.unsolicited") == "pass"
    found = evidence(padded_audit, "padding.unsolicited")
    assert found["no_edns"] == {"response_len": found["no_edns"]["response_len"],  # type: ignore[index]
                                "opt": False, "padded": False}  # fmt: skip
    assert found["edns_no_padding"]["padded"] is False  # type: ignore[index]
