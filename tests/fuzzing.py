"""Example budgets for the property (Hypothesis) tests.

Each property test states its everyday budget as ``max_examples=examples(N)``. ``make
fuzz`` multiplies every budget by ``DOTAUDIT_FUZZ_SCALE`` and runs with random seeds
(the ``fuzz`` profile); ``make test`` under ``CI=true`` runs the everyday budgets
derandomized (the ``ci`` profile), so a CI run is repeatable. Profiles: tests/conftest.py.
"""

from __future__ import annotations

import os

FUZZ_SCALE = max(1, int(os.environ.get("DOTAUDIT_FUZZ_SCALE", "") or 1))


def examples(everyday: int) -> int:
    return everyday * FUZZ_SCALE
