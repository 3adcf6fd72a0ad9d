"""Loaded at start-up by every Python process of a mutation run (PYTHONPATH, set by
tools/mutate.py), so that CLI tests which run ``python -m dotaudit`` count for mutmut.

mutmut learns which test reaches which function by recording calls in its own process;
a subprocess's calls are lost with it. In mutmut's recording run (MUTANT_UNDER_TEST is
"stats") this keeps the subprocess's calls and appends them, when it exits, to the file
named by $DOTAUDIT_MUTATION_HITS, which the ``subprocess_hits`` pytest plugin hands back
to mutmut for the test that ran it. Outside that run it does nothing.
"""

from __future__ import annotations

import os


def _record_subprocess_hits(path: str) -> None:
    import atexit

    import mutmut.stats

    hits: set[str] = set()

    def record_trampoline_hit(name: str, caller: str | None = None) -> None:
        hits.add(name)

    def flush() -> None:
        if hits:
            with open(path, "a", encoding="utf-8") as out:
                out.write("".join(f"{name}\n" for name in sorted(hits)))

    # Bound before mutmut.mutation.trampoline imports it by name.
    mutmut.stats.record_trampoline_hit = record_trampoline_hit  # type: ignore[assignment]
    atexit.register(flush)


def _chain_system_sitecustomize() -> None:
    """This file shadows the interpreter's own sitecustomize: run that one too."""
    import contextlib
    import importlib.util
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if not entry or os.path.abspath(entry) == here:
            continue
        candidate = os.path.join(entry, "sitecustomize.py")
        if os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location("_system_sitecustomize", candidate)
            if spec and spec.loader:
                # Never stop a process for an optional hook.
                with contextlib.suppress(Exception):
                    spec.loader.exec_module(importlib.util.module_from_spec(spec))
            return


_chain_system_sitecustomize()
_hits_path = os.environ.get("DOTAUDIT_MUTATION_HITS")
if _hits_path and os.environ.get("MUTANT_UNDER_TEST") == "stats":
    _record_subprocess_hits(_hits_path)
