"""Under CI=true nothing may skip or xfail: a pytest plugin, loaded by tests/conftest.py.

A skip for a missing tool, lab or corpus means a missing install step that a green run
would hide, and an xfail is a known failure that a green run would hide. Only a skip or
xfail whose reason *starts with* ``not applicable:`` stays (the situation a test guards
against cannot arise on this machine). This holds for test skips and xfails (marks,
``pytest.skip``, ``pytest.xfail``, an unexpected pass of an xfail) and for whole modules
skipped at collection (``pytest.skip(..., allow_module_level=True)``, a module-level
``pytest.importorskip``), which fail the collection.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
EXEMPT_PREFIX = "not applicable:"
_SKIPPED = "Skipped: "


def skip_reason(longrepr: Any) -> str:
    """The reason a skip report carries, without pytest's ``Skipped: `` prefix."""
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else ""
    return reason.removeprefix(_SKIPPED)


def exempt(reason: str) -> bool:
    return reason.startswith(EXEMPT_PREFIX)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not IN_CI:
        return
    if hasattr(report, "wasxfail"):
        # xfailed (reported as skipped) or xpassed (reported as passed): both hide something.
        reason = str(report.wasxfail)
        if not exempt(reason):
            kind = "xfailed" if report.skipped else "xpassed"
            report.outcome = "failed"
            report.longrepr = f"{kind} under CI=true (xfail is not exempt): {reason!r}"
            del report.wasxfail
        return
    if report.skipped:
        reason = skip_reason(report.longrepr)
        if not exempt(reason):
            report.outcome = "failed"
            report.longrepr = f"skipped under CI=true: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()
    if IN_CI and report.skipped:
        reason = skip_reason(report.longrepr)
        if not exempt(reason):
            report.outcome = "failed"
            report.longrepr = f"{collector.nodeid}: module skipped under CI=true: {reason}"
