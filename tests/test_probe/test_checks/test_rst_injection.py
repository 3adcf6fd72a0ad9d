"""rst-injection without root: connect() cannot tell whose reset it is, so the check is
skipped and says why; with no reset at all there is nothing to attribute. With root,
tests/test_probe/test_firewall.py tells an injected reset by its TTL."""

from __future__ import annotations

import socket

import pytest

from dotaudit.probe.base import CheckStatus, ProbeConfig
from dotaudit.probe.checks import rst_injection
from dotaudit.probe.registry import BY_ID
from dotaudit.probe.runner import run_target
from dotaudit.probe.target import parse_target
from tests.test_probe.test_runner import closed_port


def test_rst_probe_without_root_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rst_injection, "can_send_raw", lambda: False)
    checks = [BY_ID["reach.853"], BY_ID["rst-injection"]]
    result = run_target(parse_target(f"127.0.0.1:{closed_port()}"), ProbeConfig(timeout=1.0),
                        checks=checks)  # fmt: skip
    rst = result.attempt("rst-injection")
    assert rst is not None and rst.status is CheckStatus.SKIP  # not tested: no finding
    assert rst.evidence["method"] == "connect"
    assert "needs root" in (rst.error_reason or "")


def test_no_reset_is_nothing_to_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, a port that sent no reset "passed" a check that had nothing to test."""
    monkeypatch.setattr(rst_injection, "can_send_raw", lambda: True)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        checks = [BY_ID["reach.853"], BY_ID["rst-injection"]]
        result = run_target(parse_target(f"127.0.0.1:{port}"), ProbeConfig(timeout=1.0),
                            checks=checks)  # fmt: skip
    rst = result.attempt("rst-injection")
    assert rst is not None and rst.status is CheckStatus.NOT_APPLICABLE
    assert rst.error_reason == f"{port} sent no reset (open): nothing to attribute"
