"""Many targets at once: a targets file, bounded concurrency, a per-address cap, results
streamed as JSON lines the moment each target finishes, and the aggregate for the
final report.

Targets file: one target per line, ``TARGET [NAME] [pin=SPKI]...``; ``#`` starts a
comment. NAME is an authentication domain name (as ``--name`` for that line only).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import IO, Any

from dotaudit.probe.base import CheckStatus, ProbeConfig
from dotaudit.probe.runner import TargetResult, run_target
from dotaudit.probe.target import ProbeTarget, TargetError, parse_target, valid_hostname
from dotaudit.x509 import normalise_pin

MAX_TARGETS = 100_000
MAX_LINE = 4096
DEFAULT_CONCURRENCY = 50
DEFAULT_PER_ADDRESS = 8
"""Targets probed at the same time on one address: a full audit opens up to six
connections, so this keeps one server from seeing more than ~50 at once."""


@dataclass(frozen=True, slots=True)
class BulkTarget:
    target: ProbeTarget
    config: ProbeConfig


def parse_targets_file(lines: Iterable[str], config: ProbeConfig) -> list[BulkTarget]:
    """Parse a targets file; raises TargetError naming the line that is wrong."""
    out: list[BulkTarget] = []
    for number, raw in enumerate(lines, 1):
        if len(raw) > MAX_LINE:
            raise TargetError(f"line {number}: longer than {MAX_LINE} characters")
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        if len(out) >= MAX_TARGETS:
            raise TargetError(f"more than {MAX_TARGETS} targets")
        first, *rest = text.split()
        try:
            target = parse_target(first)
        except TargetError as exc:
            raise TargetError(f"line {number}: {exc}") from None
        name: str | None = None
        pins: list[str] = []
        for word in rest:
            if word.startswith("pin="):
                try:
                    pins.append(normalise_pin(word[4:]))
                except ValueError as exc:
                    raise TargetError(f"line {number}: {exc}") from None
            elif name is None and valid_hostname(word):
                name = word.rstrip(".").lower()
            else:
                raise TargetError(f"line {number}: unexpected {word[:60]!r}")
        if name and target.name is None:
            target = replace(target, name=name)
        per = replace(config, pins=tuple(pins)) if pins else config
        out.append(BulkTarget(target, per))
    return out


class _AddressGate:
    """At most ``limit`` targets on one address at a time."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._lock = threading.Lock()
        self._gates: dict[str, threading.Semaphore] = {}

    def gate(self, key: str) -> threading.Semaphore:
        with self._lock:
            return self._gates.setdefault(key, threading.Semaphore(self.limit))


class JsonlStream:
    """One JSON object per finished target, flushed at once: a killed run keeps them."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle
        self._lock = threading.Lock()

    def write(self, result: TargetResult) -> None:
        self.write_record(result.to_dict())

    def write_record(self, record: dict[str, Any]) -> None:
        """One line as given (a target's ``to_dict()``, redacted by the caller, say)."""
        line = json.dumps(record, sort_keys=True, default=str)
        with self._lock:
            self.handle.write(line + "\n")
            self.handle.flush()


def run_bulk(
    targets: Sequence[BulkTarget],
    concurrency: int = DEFAULT_CONCURRENCY,
    per_address: int = DEFAULT_PER_ADDRESS,
    on_result: Callable[[TargetResult], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> list[TargetResult]:
    """Probe every target, ``concurrency`` at a time; results come back in input order.

    ``on_result`` is called (from the main thread) as each target finishes; setting
    ``stop`` starts no new target, and the ones running finish within their budgets.
    """
    gates = _AddressGate(per_address)
    results: list[TargetResult | None] = [None] * len(targets)

    def probe(item: BulkTarget) -> TargetResult:
        key = item.target.address or item.target.hostname or item.target.target
        with gates.gate(key):
            return run_target(item.target, item.config)

    done = 0
    with ThreadPoolExecutor(max_workers=max(1, concurrency),
                            thread_name_prefix="probe") as pool:  # fmt: skip
        pending: dict[Future[TargetResult], int] = {}
        queue = iter(enumerate(targets))
        while True:
            while len(pending) < max(1, concurrency) and not (stop and stop.is_set()):
                nxt = next(queue, None)
                if nxt is None:
                    break
                pending[pool.submit(probe, nxt[1])] = nxt[0]
            if not pending:
                break
            finished, _ = wait(list(pending), timeout=0.5, return_when=FIRST_COMPLETED)
            for future in finished:
                index = pending.pop(future)
                result = future.result()
                results[index] = result
                done += 1
                if on_result is not None:
                    on_result(result)
                if progress is not None:
                    progress(done, len(targets))
    return [r for r in results if r is not None]


def _status(result: TargetResult, check_id: str) -> str:
    attempt = result.attempt(check_id)
    return attempt.status.value if attempt is not None else "not-run"


AGGREGATED = ("padding.response", "keepalive", "pipelining", "reuse", "doq", "doh",
              "tls.versions", "cert.expiry", "interception")  # fmt: skip


def _reach_class(result: TargetResult) -> str:
    attempt = result.attempt("reach.853")
    return str(attempt.evidence.get("class")) if attempt is not None else "not-run"


def aggregate(results: Sequence[TargetResult]) -> dict[str, Any]:
    """Which targets pass strict mode, padding and so on, for the final report."""
    strict = [r.target.target for r in results if r.verdict.strict == "accept"]
    opportunistic = Counter(r.verdict.opportunistic for r in results)
    per_check = {
        check_id: dict(Counter(_status(r, check_id) for r in results)) for check_id in AGGREGATED
    }
    reach = Counter(_reach_class(r) for r in results)
    padded = [
        r.target.target
        for r in results
        if (a := r.attempt("padding.response")) is not None and a.status is CheckStatus.PASS
    ]
    return {
        "targets": len(results),
        "strict_accept": len(strict),
        "strict_accept_targets": strict[:1000],
        "opportunistic": dict(opportunistic),
        "reach_853": dict(reach),
        "padding_468": len(padded),
        "checks": per_check,
        "errors": sum(1 for r in results if r.error),
    }


def bulk_summary(
    results: Sequence[TargetResult], *, targets_given: int, interrupted: bool
) -> dict[str, Any]:
    """The ``bulk`` field of a bulk run's report: the aggregate over the targets that
    finished, how many were given, and whether Ctrl-C stopped the run early."""
    return {
        "aggregate": aggregate(results),
        "interrupted": interrupted,
        "targets_given": targets_given,
    }
