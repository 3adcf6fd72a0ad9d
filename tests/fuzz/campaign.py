"""A fuzz campaign: mutate seeds, run the mutants, keep one capture per crash class."""

from __future__ import annotations

import hashlib
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz.captures import Pcap, Pcapng, load_seed, parse, seed_paths
from tests.fuzz.execute import (
    MEMORY_LIMIT,
    TARGETS,
    TIME_LIMIT,
    InProcessRunner,
    Invocation,
    Outcome,
    SubprocessRunner,
)
from tests.fuzz.known import OPEN_CRASHES
from tests.fuzz.mutate import Mutator

REGRESSIONS = Path(__file__).resolve().parents[1] / "data" / "fuzz-regressions"
MAX_REGRESSION_BYTES = 64 << 10
"""Regression captures live in the repository: larger crashers are reported, not kept."""
MINIMISE_RUNS = 60
MINIMISE_SECONDS = 90.0


@dataclass
class Crash:
    signature: str
    target: str
    found_by: str
    mutations: list[str]
    detail: str
    data: bytes
    reproduced: bool
    saved: Path | None = None
    count: int = 1


@dataclass
class Campaign:
    seed: int
    executions: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    crashes: dict[str, Crash] = field(default_factory=dict)
    seeds: int = 0
    seconds: float = 0.0
    confirmed: dict[str, tuple[str, bool]] = field(default_factory=dict)
    """In-process crash signature -> (the signature of its subprocess re-run, whether
    that re-run crashed)."""

    @property
    def new_crashes(self) -> list[Crash]:
        """Crash classes not listed as open elsewhere (tests/fuzz/known.py)."""
        return [c for c in self.crashes.values() if c.signature not in OPEN_CRASHES]

    def summary(self) -> str:
        lines = [
            f"seed {self.seed}: {sum(self.executions.values())} executions "
            f"({', '.join(f'{n} {m}' for m, n in sorted(self.executions.items()))}) "
            f"over {self.seeds} seed captures in {self.seconds:.0f} s; outcomes: "
            + ", ".join(f"{n} {k}" for k, n in sorted(self.outcomes.items())),
            f"crash classes: {len(self.crashes)} ({len(self.new_crashes)} not known to be open)",
        ]
        for crash in self.crashes.values():
            where = f" -> {crash.saved}" if crash.saved else ""
            again = "" if crash.reproduced else " (in-process only, not reproduced in a subprocess)"
            how = f"{crash.target}, {crash.found_by}"
            known = " [open, see tests/fuzz/known.py]" if crash.signature in OPEN_CRASHES else ""
            lines.append(f"  [{crash.count}x] {crash.signature} ({how}){again}{known}{where}")
            lines.append(f"      mutations: {'; '.join(crash.mutations)}")
            lines.extend("      | " + line for line in crash.detail.splitlines()[-6:])
        return "\n".join(lines)


def capture_suffix(data: bytes) -> str:
    if data[:2] == b"\x1f\x8b":
        return ".pcap.gz"
    return ".pcapng" if data[:4] == b"\x0a\x0d\x0d\x0a" else ".pcap"


def regression_name(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16] + capture_suffix(data)


def run_campaign(
    *,
    seed: int,
    runs: int | None = None,
    seconds: float | None = None,
    mode: str = "mixed",
    subprocess_every: int = 4,
    save_dir: Path | None = REGRESSIONS,
    minimise: bool = True,
    memory: int = MEMORY_LIMIT,
    time_limit: float = TIME_LIMIT,
    require_corpus: bool = False,
    log: Callable[[str], None] = print,
) -> Campaign:
    """Run mutants until ``runs`` executions or ``seconds`` have passed, whichever first.

    In ``mixed`` mode execution ``i`` runs in a subprocess when ``i % subprocess_every``
    is 0 and in the in-process worker otherwise; which mutant, target and mode execution
    ``i`` gets depends on ``seed`` only, never on timing or outcomes.
    """
    if runs is None and seconds is None:
        raise ValueError("give runs or seconds")
    paths = seed_paths(require_corpus=require_corpus)
    seeds = [load_seed(p) for p in paths]
    mutator = Mutator(seeds, random.Random(seed))
    choices = random.Random(seed * 7919 + 1)
    campaign = Campaign(seed=seed, seeds=len(seeds))
    subprocess_runner = SubprocessRunner(memory, time_limit)
    in_process = InProcessRunner(memory, time_limit)
    work = Path(tempfile.mkdtemp(prefix="dotaudit-fuzz-"))
    start = last_note = time.monotonic()
    index = 0
    try:
        while (runs is None or index < runs) and (
            seconds is None or time.monotonic() - start < seconds
        ):
            data, mutations = mutator.mutant()
            target = choices.choice(TARGETS)
            policy = choices.random() < 0.5
            workers = 2 if target == "events" and choices.random() < 0.1 else 1
            in_sub = mode == "subprocess" or (mode == "mixed" and index % subprocess_every == 0)
            runner = subprocess_runner if in_sub else in_process
            if not in_sub:
                workers = 1  # forking shards from the worker would fork the worker
            invocation = _prepare(work / f"run-{index}", data, target, policy, workers)
            outcome = runner.run(invocation)
            campaign.executions[runner.mode] += 1
            campaign.outcomes[outcome.kind] += 1
            if outcome.crashed:
                _record(
                    campaign,
                    invocation,
                    outcome,
                    data,
                    mutations,
                    runner.mode,
                    subprocess_runner,
                    save_dir,
                    minimise,
                    work,
                    log,
                )
            shutil.rmtree(invocation.outdir.parent, ignore_errors=True)
            index += 1
            now = time.monotonic()
            if now - last_note >= 30:
                last_note = now
                classes = len(campaign.crashes)
                log(f"{index} executions in {now - start:.0f} s, {classes} crash classes")
    finally:
        in_process.close()
        shutil.rmtree(work, ignore_errors=True)
        campaign.seconds = time.monotonic() - start
    return campaign


def _prepare(run_dir: Path, data: bytes, target: str, policy: bool, workers: int) -> Invocation:
    (run_dir / "in").mkdir(parents=True, exist_ok=True)
    (run_dir / "out").mkdir()
    capture = run_dir / "in" / ("capture" + capture_suffix(data))
    capture.write_bytes(data)
    return Invocation(target, capture, run_dir / "out", policy=policy, workers=workers)


def _record(
    campaign: Campaign,
    invocation: Invocation,
    outcome: Outcome,
    data: bytes,
    mutations: list[str],
    found_by: str,
    runner: SubprocessRunner,
    save_dir: Path | None,
    minimise: bool,
    work: Path,
    log: Callable[[str], None],
) -> None:
    signature = outcome.signature
    reproduced = True
    if found_by != "subprocess":
        # A class already confirmed is not re-run: a timeout would cost the limit again.
        if outcome.signature not in campaign.confirmed:
            again = _rerun(runner, work, data, invocation)
            again_signature = again.signature if again.crashed else outcome.signature
            campaign.confirmed[outcome.signature] = (again_signature, again.crashed)
        signature, reproduced = campaign.confirmed[outcome.signature]
    known = campaign.crashes.get(signature)
    if known is not None:
        known.count += 1
        return
    log(f"new crash class: {signature} ({invocation.target}, {found_by}): {'; '.join(mutations)}")
    crash = Crash(
        signature, invocation.target, found_by, mutations, outcome.detail, data, reproduced
    )
    campaign.crashes[signature] = crash
    if not reproduced:
        return
    if minimise and signature != "timeout":
        deadline = time.monotonic() + MINIMISE_SECONDS

        def still_crashes(candidate: bytes) -> bool:
            if time.monotonic() > deadline:
                return False
            return _rerun(runner, work, candidate, invocation).signature == signature

        crash.data = minimised(data, still_crashes)
    if save_dir is not None and len(crash.data) <= MAX_REGRESSION_BYTES:
        save_dir.mkdir(parents=True, exist_ok=True)
        crash.saved = save_dir / regression_name(crash.data)
        crash.saved.write_bytes(crash.data)


def _rerun(runner: SubprocessRunner, work: Path, data: bytes, like: Invocation) -> Outcome:
    run_dir = Path(tempfile.mkdtemp(prefix="rerun-", dir=work))
    invocation = _prepare(run_dir, data, like.target, like.policy, like.workers)
    try:
        return runner.run(invocation)
    finally:
        shutil.rmtree(invocation.outdir.parent, ignore_errors=True)


def minimised(
    data: bytes, still_crashes: Callable[[bytes], bool], budget: int = MINIMISE_RUNS
) -> bytes:
    """Fewer records (or blocks) that still crash the same way: chunks of halving size are
    dropped while the crash stays (a rough delta debugging, bounded by ``budget`` runs)."""
    view = parse(data)
    if view is None:
        return data
    items: list[object] = (
        list(view.records)
        if isinstance(view, Pcap)
        else list(zip(view.blocks, view.orders, strict=True))
    )

    def build(kept: list[object]) -> bytes:
        if isinstance(view, Pcap):
            return Pcap(view.order, view.header, kept, view.tail).to_bytes()  # type: ignore[arg-type]
        blocks = [block for block, _ in kept]  # type: ignore[misc]
        orders = [order for _, order in kept]  # type: ignore[misc]
        return Pcapng(blocks, view.tail, orders).to_bytes()

    best = data
    chunk = max(1, len(items) // 2)
    while budget > 0 and items:
        at = 0
        while at < len(items) and budget > 0:
            candidate = items[:at] + items[at + chunk :]
            budget -= 1
            candidate_bytes = build(candidate)
            if still_crashes(candidate_bytes):
                items, best = candidate, candidate_bytes
            else:
                at += chunk
        if chunk == 1:
            break
        chunk = max(1, chunk // 2)
    return best
