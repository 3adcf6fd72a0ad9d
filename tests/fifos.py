"""Inputs that stay busy until a test stops them: captures fed through FIFOs.

A signal test must land its signal while the run is still reading; a capture on disk can
be read to the end first on a fast machine, a FIFO fed from a thread cannot.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path


def feed_fifos(fifos: list[Path], data: bytes, repeat: int = 1) -> list[threading.Thread]:
    """Write ``data`` into each FIFO from a thread of its own (each open blocks until the
    reader opens it), so that the readers are busy when a signal lands. With ``repeat``,
    ``data`` is a pcap whose records (not its file header) are written that many times:
    one long capture, which keeps a fast reader busy until it is stopped."""

    def feed(fifo: Path) -> None:
        try:
            with open(fifo, "wb") as pipe:
                if repeat == 1:
                    chunks = [data]
                else:
                    pipe.write(data[:24])
                    chunks = [data[24:]] * repeat
                for chunk in chunks:
                    for at in range(0, len(chunk), 1 << 16):
                        pipe.write(chunk[at : at + (1 << 16)])
        except BrokenPipeError:
            pass  # the reader was stopped: that is the point

    threads = [threading.Thread(target=feed, args=(fifo,), daemon=True) for fifo in fifos]
    for thread in threads:
        thread.start()
    return threads


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
