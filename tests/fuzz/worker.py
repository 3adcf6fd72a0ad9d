"""The in-process fuzz worker: ``dotaudit.cli.main(argv)`` for one request after another.

Reads one JSON request per line on stdin (``{"argv": [...]}``) and answers one JSON line
on the original stdout: the exit code, what the command wrote to stderr, whether the
time limit (argv[1], seconds) cut it short, and whether the worker should be restarted.
An exception escaping ``main`` is printed as the traceback a user would have seen.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import signal
import sys
import traceback
from types import FrameType


class _TimeLimit(BaseException):
    """Raised by the timer; a BaseException so that no ``except Exception`` eats it."""


def _expire(signum: int, frame: FrameType | None) -> None:
    raise _TimeLimit


def serve(time_limit: float) -> None:
    from dotaudit.cli import main

    replies = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # stray writes to fd 1 must not corrupt the replies
    signal.signal(signal.SIGALRM, _expire)
    for line in sys.stdin:
        argv = json.loads(line)["argv"]
        err = io.StringIO()
        returncode: int | None = None
        timed_out = restart = False
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            signal.setitimer(signal.ITIMER_REAL, time_limit)
            try:
                returncode = main(argv)
            except _TimeLimit:
                timed_out = True
            except SystemExit as exc:
                returncode = exc.code if isinstance(exc.code, int) else 2
            except BaseException as exc:  # reported as the user would see it
                err.write("".join(traceback.format_exception(exc)))
                returncode = 1
                restart = isinstance(exc, MemoryError)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        gc.unfreeze()  # the CLI freezes the GC's objects; one input's must not pile up
        gc.collect()
        reply = {
            "returncode": returncode,
            "stderr": err.getvalue(),
            "timed_out": timed_out,
            "restart": restart or timed_out,
        }
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    serve(float(sys.argv[1]))
