"""The check registry: run order respects dependencies, selecting a check brings what it
needs, and every check declares its RFC, level and budget."""

from __future__ import annotations

from dotaudit.probe.base import Level
from dotaudit.probe.registry import CHECKS, order_problems, with_dependencies


def test_registry_order_and_dependencies() -> None:
    assert order_problems() == []
    ids = [c.id for c in with_dependencies({"blocked-port"})]
    assert ids == ["reach.853", "reach.53", "rst-injection", "blocked-port"]
    expected = {"reach.853", "reach.53", "rst-injection", "blocked-port", "tls.versions",
                "cert.chain", "cert.name", "cert.pin", "cert.expiry", "cert.quality",
                "interception", "cleartext-on-853", "tls.resumption"}  # fmt: skip
    assert expected <= {c.id for c in CHECKS}
    for check in CHECKS:
        assert check.rfc.startswith("RFC") and check.level in Level and check.budget > 0
