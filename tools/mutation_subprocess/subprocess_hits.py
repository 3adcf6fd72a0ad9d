"""pytest plugin for mutation runs (``-p subprocess_hits``, added by tools/mutate.py):
in mutmut's recording run, the functions that a test's subprocesses called (written by
this folder's sitecustomize) are credited to that test, so that mutmut later runs the
CLI tests against the mutants of the code they reach."""

from __future__ import annotations

import os
import tempfile

import pytest

HITS = "DOTAUDIT_MUTATION_HITS"
CREDITED = "DOTAUDIT_MUTATION_SUBPROCESS_MODULES"
"""Comma-separated module prefixes whose functions a subprocess's calls are credited to
(the exit-status code); other modules have in-process tests, and crediting every CLI
test to every detector would only make their mutants slow to test."""


def _recording() -> bool:
    return os.environ.get("MUTANT_UNDER_TEST") == "stats"


def pytest_configure(config: pytest.Config) -> None:
    if not _recording():
        return
    fd, path = tempfile.mkstemp(prefix="dotaudit-mutation-hits-")
    os.close(fd)
    os.environ[HITS] = path

    def cleanup() -> None:
        os.environ.pop(HITS, None)
        os.unlink(path)

    config.add_cleanup(cleanup)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Before mutmut's own teardown hook files this test's calls."""
    path = os.environ.get(HITS)
    if not path or not _recording():
        return
    with open(path, "r+", encoding="utf-8") as hits:
        names = hits.read().split()
        hits.seek(0)
        hits.truncate()
    prefixes = tuple(p for p in os.environ.get(CREDITED, "").split(",") if p)
    credited = [n for n in names if n.startswith(prefixes)] if prefixes else names
    if credited:
        from mutmut.state import state

        state()._stats.update(credited)
