"""What a piece of state costs: the bytes an action leaves allocated, by tracemalloc.

Deterministic where RSS is not, so a test can hold a structure to its bytes per entry.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable


def bytes_kept(action: Callable[[], object]) -> int:
    """Bytes still allocated after ``action`` ran and garbage was collected: what the
    objects it filled hold on to (its result is dropped first)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        action()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
