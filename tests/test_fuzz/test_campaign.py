"""The bounded fuzz run of ``make test``: mutated captures through the real entry points.

Under CI=true the seed is fixed, so a failure there replays exactly with
``python -m tests.fuzz --seed SEED --runs RUNS``; elsewhere each run takes a fresh seed
(printed on failure). ``make fuzz`` runs the same fuzzer for longer.
"""

from __future__ import annotations

import random
from pathlib import Path

from tests.conftest import IN_CI
from tests.fuzz.campaign import run_campaign

CI_SEED = 20_251_207
RUNS = 200
"""About 40 s on a lightly loaded 2-core machine: a quarter in fresh subprocesses."""
SECONDS = 75.0
"""A cap for a loaded machine: the run stops early rather than stretch ``make test``."""


def test_bounded_fuzz_run_finds_no_crash(tmp_path: Path) -> None:
    seed = CI_SEED if IN_CI else random.SystemRandom().randrange(1 << 32)
    notes: list[str] = []
    campaign = run_campaign(
        seed=seed,
        runs=RUNS,
        seconds=SECONDS,
        mode="mixed",
        subprocess_every=4,
        save_dir=tmp_path / "crashes",
        minimise=False,
        require_corpus=IN_CI,
        log=notes.append,
    )
    report = campaign.summary()
    print(report)
    # Real processes, as a user runs them, are part of every bounded run.
    assert campaign.executions["subprocess"] >= 10, report
    assert campaign.executions["in-process"] >= 30, report
    assert campaign.outcomes["ok"] > 0, report
    assert not campaign.new_crashes, (
        f"replay: python -m tests.fuzz --seed {seed} --runs {RUNS}\n{report}"
    )
