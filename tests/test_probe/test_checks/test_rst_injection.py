"""rst-injection without root: the raw-SYN probe falls back to connect() and says so.
With root, tests/test_probe/test_firewall.py tells an injected reset by its TTL."""

from __future__ import annotations

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
    assert rst is not None and rst.status is CheckStatus.WARN
    assert rst.evidence["method"] == "connect"
    assert "needs root" in (rst.error_reason or "")
