"""Running one capture through dotaudit's entry points, and judging what came out.

Two ways to run, judged by the same rules (:func:`classify`):

- :class:`SubprocessRunner`: ``python -m dotaudit ...``, one fresh process per input,
  under an address-space limit and a wall-clock limit. Exactly what a user runs: exit
  codes, stderr, atomic output, temporary files and interpreter start-up included.
- :class:`InProcessRunner`: one long-lived worker process (:mod:`tests.fuzz.worker`)
  calls ``dotaudit.cli.main(argv)`` for input after input, some ten times faster. The
  trade-off: the limits cover the worker as a whole, not one input; state left behind by
  one input (caches, leaks, a frozen GC generation) can change what the next one does, so
  a crash it finds is confirmed in a subprocess before it counts as reproducible; and a
  crash of the interpreter itself takes the worker down (it is restarted).
"""

from __future__ import annotations

import json
import os
import re
import resource
import select
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.fuzz.captures import ROOT

TARGETS = ("analyze", "events", "evidence")
MEMORY_LIMIT = 1 << 30
TIME_LIMIT = 20.0
OUTPUT = {"analyze": "out.json", "evidence": "out.json", "events": "out.jsonl"}
POLICY = ROOT / "tests" / "policies" / "severity-overrides.toml"
"""Loopback counts as the network: the sample captures are loopback traffic, and without
it most detectors would stay quiet on their mutants."""
_FRAME = re.compile(r'^\s*File "([^"]+)", line \d+, in (\S+)')
_INCOMPLETE = re.compile(r"^dotaudit: .+: (unreadable: .+|partial: .+ \(--strict\))$")
"""The line of an audit that could not read its input whole (exit 2, output written)."""


@dataclass(frozen=True)
class Invocation:
    """What to run: the target, its capture and where its output goes."""

    target: str
    capture: Path
    outdir: Path
    policy: bool = False
    workers: int = 1

    def argv(self) -> list[str]:
        output = str(self.outdir / OUTPUT[self.target])
        if self.target == "events":
            args = ["events", str(self.capture), "-o", output]
            if self.workers > 1:
                args += ["--workers", str(self.workers)]
            return args
        args = ["analyze", str(self.capture), "--format", "json", "-o", output]
        if self.target == "evidence":
            args += ["--evidence", str(self.outdir / "evidence")]
        if self.policy:
            args += ["--policy", str(POLICY)]
        return args


@dataclass(frozen=True)
class Outcome:
    """``kind``: ``ok`` (exit 0/1, valid output), ``input-error`` (exit 2, one clean
    ``dotaudit:`` line), ``incomplete`` (exit 2 for an input not read whole, valid output)
    or ``crash``; ``signature`` names the crash class."""

    kind: str
    signature: str = ""
    detail: str = ""

    @property
    def crashed(self) -> bool:
        return self.kind == "crash"


def classify(
    invocation: Invocation,
    returncode: int | None,
    stderr: str,
    *,
    timed_out: bool = False,
    input_before: bytes | None = None,
) -> Outcome:
    """Judge one run by the house rules (see the module docstring of tests.fuzz)."""
    tail = "\n".join(stderr.splitlines()[-30:])
    if timed_out:
        return Outcome("crash", "timeout", tail)
    if "Traceback (most recent call last)" in stderr:
        return Outcome("crash", traceback_signature(stderr), tail)
    if "MemoryError" in stderr or "Cannot allocate memory" in stderr:
        return Outcome("crash", "memory limit", tail)
    if returncode is None or returncode < 0:
        name = signal.Signals(-returncode).name if returncode else "worker lost"
        return Outcome("crash", f"killed by {name}", tail)
    leftovers = leftover_files(invocation)
    if leftovers:
        return Outcome("crash", "temporary file left behind", ", ".join(leftovers))
    if input_before is not None and invocation.capture.read_bytes() != input_before:
        return Outcome("crash", "input overwritten", str(invocation.capture))
    if returncode in (0, 1):
        problem = output_problem(invocation)
        if problem:
            return Outcome("crash", problem, tail)
        return Outcome("ok")
    if returncode == 2:
        lines = [line for line in stderr.splitlines() if line.strip()]
        ours = [line for line in lines if line.startswith("dotaudit: ")]
        others = [
            line for line in lines if not line.startswith(("dotaudit: ", "warning: ", "error: "))
        ]
        if len(ours) == 1 and lines[-1] == ours[0] and _INCOMPLETE.match(ours[0]):
            # The audit ran but could not read its input: the report (and the text
            # summary before this line) is written all the same.
            problem = output_problem(invocation)
            if problem:
                return Outcome("crash", problem.replace("exit 0/1", "exit 2 (incomplete)"), tail)
            return Outcome("incomplete", "", ours[0])
        if len(ours) == 1 and lines[-1] == ours[0] and not others:
            return Outcome("input-error", "", ours[0])
        return Outcome("crash", "exit 2 without exactly one 'dotaudit:' line", tail)
    return Outcome("crash", f"exit {returncode}", tail)


def traceback_signature(text: str) -> str:
    """``ExceptionType in dotaudit/path.py:function``: the innermost frame of the last
    traceback that lies in dotaudit (line numbers left out: they move with every edit)."""
    lines = text.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("Traceback"))
    frames: list[tuple[str, str]] = []
    exception = "unknown exception"
    for line in lines[start + 1 :]:
        match = _FRAME.match(line)
        if match:
            frames.append((match.group(1), match.group(2)))
        elif line and not line[0].isspace():
            exception = line.split(":", 1)[0].strip()
            break
    ours = [(f, fn) for f, fn in frames if "/dotaudit/" in f and "/tests/" not in f]
    file, function = (ours or frames or [("?", "?")])[-1]
    if "/dotaudit/" in file:
        file = "dotaudit/" + file.rsplit("/dotaudit/", 1)[1]
    return f"{exception} in {file}:{function}"


def leftover_files(invocation: Invocation) -> list[str]:
    """Temporary files under the output directory (atomic writes leave none)."""
    found = []
    for path in invocation.outdir.rglob("*"):
        if ".tmp" in path.name or path.name.endswith("~"):
            found.append(str(path.relative_to(invocation.outdir)))
    return sorted(found)


def _not_json(constant: str) -> object:
    raise ValueError(f"{constant} is not JSON")


def output_problem(invocation: Invocation) -> str:
    """Why the output of a successful run is not what its format promises ('' if it is)."""
    output = invocation.outdir / OUTPUT[invocation.target]
    if not output.is_file():
        return "exit 0/1 without an output file"
    try:
        text = output.read_text(encoding="utf-8")
        if invocation.target == "events":
            for line in text.splitlines():
                if not isinstance(json.loads(line, parse_constant=_not_json), dict):
                    return "events output line is not a JSON object"
        else:
            report = json.loads(text, parse_constant=_not_json)
            if not isinstance(report, dict) or not isinstance(report.get("findings"), list):
                return "report is not a JSON object with findings"
    except (UnicodeDecodeError, ValueError):
        return "malformed JSON output"
    return ""


def _limits(memory: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class SubprocessRunner:
    """``python -m dotaudit ARGS`` in a new process group, under the limits."""

    mode = "subprocess"

    def __init__(self, memory: int = MEMORY_LIMIT, time_limit: float = TIME_LIMIT) -> None:
        self.memory = memory
        self.time_limit = time_limit

    def run(self, invocation: Invocation) -> Outcome:
        before = invocation.capture.read_bytes()
        with tempfile.TemporaryFile() as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "dotaudit", *invocation.argv()],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,  # a timeout kills the shards of --workers too
                preexec_fn=lambda: _limits(self.memory),
            )
            timed_out = False
            try:
                returncode: int | None = process.wait(timeout=self.time_limit)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(process.pid, signal.SIGKILL)
                returncode = process.wait()
            err.seek(0)
            stderr = err.read().decode("utf-8", "replace")
        return classify(invocation, returncode, stderr, timed_out=timed_out, input_before=before)

    def close(self) -> None:
        pass


class InProcessRunner:
    """Many inputs per process: requests go to :mod:`tests.fuzz.worker` over a pipe."""

    mode = "in-process"

    def __init__(self, memory: int = MEMORY_LIMIT, time_limit: float = TIME_LIMIT) -> None:
        self.memory = memory
        self.time_limit = time_limit
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tests.fuzz.worker", str(self.time_limit)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                start_new_session=True,
                preexec_fn=lambda: _limits(self.memory),
            )
        return self._process

    def run(self, invocation: Invocation) -> Outcome:
        before = invocation.capture.read_bytes()
        process = self._start()
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(json.dumps({"argv": invocation.argv()}).encode() + b"\n")
            process.stdin.flush()
        except BrokenPipeError:
            pass
        ready, _, _ = select.select([process.stdout], [], [], self.time_limit + 30)
        line = process.stdout.readline() if ready else b""
        if not line:  # the worker died or hung: the input took the interpreter with it
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            returncode = process.wait()
            assert self._stderr is not None
            self._stderr.seek(0)
            stderr = self._stderr.read().decode("utf-8", "replace")
            self.close()
            lost = returncode if returncode < 0 else None
            return classify(invocation, lost, stderr, timed_out=not ready)
        reply = json.loads(line)
        if reply["restart"]:  # after a MemoryError or a timeout the worker may be unwell
            self.close()
        return classify(
            invocation,
            reply["returncode"],
            reply["stderr"],
            timed_out=reply["timed_out"],
            input_before=before,
        )

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
