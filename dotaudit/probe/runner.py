"""Run the registered checks against targets and fold the results into a report.

Per target: resolve a hostname, then run the selected checks (plus what they depend on)
in registry order. A check whose dependencies did not pass or warn is skipped with the
reason; every check gets its own deadline, clipped to the target's overall budget (a
check the budget leaves no time for is an ``error``: the audit is incomplete); any
exception a check raises becomes an ``error`` attempt, never a crash.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dotaudit.model.findings import Finding, Severity
from dotaudit.model.report import AuditReport
from dotaudit.probe.base import (
    DEFAULT_TIMEOUT,
    NEEDS_INTERNET,
    Check,
    CheckAttempt,
    CheckContext,
    CheckStatus,
    Handshake,
    Outcome,
    ProbeConfig,
    skipped,
)
from dotaudit.probe.findings import target_findings
from dotaudit.probe.registry import CHECKS, with_dependencies
from dotaudit.probe.target import ProbeTarget
from dotaudit.probe.transport import Deadline, ProbeError, Transport
from dotaudit.probe.verdict import TlsOutcome, Verdict, judge


@dataclass
class TargetResult:
    target: ProbeTarget
    name: str | None
    attempts: list[CheckAttempt]
    verdict: Verdict
    stats: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    error: str | None = None

    def attempt(self, check_id: str) -> CheckAttempt | None:
        return next((a for a in self.attempts if a.id == check_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.target,
            "address": self.target.address,
            "port": self.target.port,
            "name": self.name,
            "resolved": list(self.target.resolved),
            "verdict": self.verdict.to_dict(),
            "checks": [a.to_dict() for a in self.attempts],
            "connections": self.stats,
            "elapsed_s": round(self.elapsed_s, 3),
            "error": self.error,
        }


def check_budget(check: Check, config: ProbeConfig) -> float:
    """The check's budget, scaled with ``--timeout``, plus the waits its options ask for."""
    return check.budget * max(1.0, config.timeout / DEFAULT_TIMEOUT) + check.extra_wait(config)


def _attempt(check: Check, outcome: Outcome, elapsed: float) -> CheckAttempt:
    return CheckAttempt(
        id=check.id,
        status=outcome.status,
        level=check.level,
        rfc=check.rfc,
        evidence=outcome.evidence,
        error_reason=outcome.reason,
        title=check.title,
        findings=outcome.findings,
        elapsed_s=elapsed,
    )


def _blocked_by(check: Check, ctx: CheckContext) -> str | None:
    for dep in check.depends_on:
        attempt = ctx.results.get(dep)
        if attempt is None:
            return f"needs {dep}, which did not run"
        if attempt.status not in (CheckStatus.PASS, CheckStatus.WARN):
            why = f": {attempt.error_reason}" if attempt.error_reason else ""
            return f"needs {dep}, which is {attempt.status.value}{why}"
    return None


def run_check(check: Check, ctx: CheckContext) -> CheckAttempt:
    """Run one check under its budget; every failure becomes data."""
    blocked = _blocked_by(check, ctx)
    if blocked:
        return _attempt(check, Outcome(CheckStatus.SKIP, {}, blocked), 0.0)
    if check.online_only and not ctx.config.options.online:
        return _attempt(check, skipped(NEEDS_INTERNET, {"online_only": True}), 0.0)
    left = ctx.target_deadline.remaining()
    if left <= 0:
        # Not the user's choice, unlike --checks: an audit cut short is not a clean one.
        reason = (
            f"not run: the target budget of {ctx.config.target_budget:.0f} s was used up "
            "(raise --budget)"
        )
        return _attempt(check, Outcome(CheckStatus.ERROR, {"error_kind": "budget"}, reason), 0.0)
    ctx.deadline = Deadline(min(check_budget(check, ctx.config), left))
    start = time.monotonic()
    try:
        outcome = check.run(ctx)
    except ProbeError as exc:
        outcome = Outcome(CheckStatus.ERROR, {"error_kind": exc.kind}, str(exc))
    except Exception as exc:  # a bug or hostile input in a check must not end the probe
        frame = traceback.extract_tb(exc.__traceback__)[-1:]
        where = f" at {frame[0].filename.rsplit('/', 1)[-1]}:{frame[0].lineno}" if frame else ""
        outcome = Outcome(
            CheckStatus.ERROR,
            {"error_kind": "internal"},
            f"internal error: {type(exc).__name__}: {exc}{where}",
        )
    return _attempt(check, outcome, time.monotonic() - start)


def _tls_outcome(ctx: CheckContext) -> TlsOutcome:
    info = ctx.cache.get("handshake")
    if not isinstance(info, Handshake):
        return TlsOutcome(None)
    if info.connection is not None:
        return TlsOutcome(True)
    return TlsOutcome(False, str(info.error) if info.error else "unknown failure")


def run_target(
    target: ProbeTarget,
    config: ProbeConfig,
    checks: Sequence[Check] | None = None,
    transport: Transport | None = None,
) -> TargetResult:
    """Probe one target with ``checks`` (default: the registry, filtered by config)."""
    start = time.monotonic()
    chosen = list(checks) if checks is not None else with_dependencies(config.checks)
    net = transport or Transport()
    error: str | None = None
    if target.address is None and target.hostname:
        try:
            found = net.resolve(target.hostname, Deadline(config.timeout))
            target = target.with_address(found[0], tuple(found))
        except ProbeError as exc:
            error = str(exc)
    ctx = CheckContext(target, config, net)
    attempts: list[CheckAttempt] = []
    try:
        for check in chosen:
            if error is not None:
                attempt = _attempt(check, Outcome(CheckStatus.SKIP, {}, error), 0.0)
            else:
                attempt = run_check(check, ctx)
            ctx.results[check.id] = attempt
            attempts.append(attempt)
    finally:
        ctx.close()
    verdict = judge(
        ctx.results,
        _tls_outcome(ctx),
        pinned=bool(config.pins),
        named=ctx.name is not None,
        port=target.port,
        unresolved=error,
    )
    return TargetResult(
        target,
        ctx.name,
        attempts,
        verdict,
        net.stats.to_dict(),
        time.monotonic() - start,
        error,
    )


def run_targets(
    targets: Sequence[ProbeTarget],
    config: ProbeConfig,
    progress: Callable[[int, int], None] | None = None,
) -> list[TargetResult]:
    results: list[TargetResult] = []
    for index, target in enumerate(targets):
        results.append(run_target(target, config))
        if progress is not None:
            progress(index + 1, len(targets))
    return results


def findings_of(result: TargetResult, mode: str) -> list[Finding]:
    """The target's findings for ``mode`` (:mod:`dotaudit.probe.findings`)."""
    return target_findings(result.target, result.name, result.attempts, result.verdict, mode)


def result_severity(result: TargetResult, mode: str) -> Severity | None:
    """How a target counts towards ``--fail-on``: the highest of its findings, so that
    what counts is always listed."""
    return max((f.severity for f in findings_of(result, mode)), default=None)


def target_row(result: TargetResult, mode: str) -> dict[str, Any]:
    """A target of the report: its results and the severity it counts with for ``mode``."""
    severity = result_severity(result, mode)
    return {**result.to_dict(), "severity": severity.label if severity is not None else None}


def probe_report(
    results: Sequence[TargetResult],
    config: ProbeConfig,
    generated_at: str,
    *,
    bulk: dict[str, Any] | None = None,
) -> AuditReport:
    """The report of a probe run; ``bulk`` is the summary of a bulk run."""
    report = AuditReport(kind="probe", generated_at=generated_at, bulk=bulk or {})
    report.sections["targets"] = [target_row(r, config.mode) for r in results]
    for result in results:
        report.findings.extend(findings_of(result, config.mode))
    report.probe_config = {
        "mode": config.mode,
        "timeout_s": config.timeout,
        "target_budget_s": config.target_budget,
        "max_idle_wait_s": config.options.max_idle_wait,
        "ca_file": config.ca_file,
        "pins": list(config.pins),
        "checks": sorted(config.checks) if config.checks else [c.id for c in CHECKS],
    }
    return report
