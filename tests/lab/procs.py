"""Start and stop the lab's daemons, and clean up after a run that crashed.

Every process is recorded (PID plus its kernel start time, so a recycled PID is never
mistaken for ours) in a per-owner state file under ``tests/lab/run/``. Teardown signals
only recorded processes whose start time still matches. A later run removes what a dead
owner left behind: processes, network namespaces and the owner's state file.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

STATE_DIR = Path(__file__).resolve().parent / "run"


class LabError(RuntimeError):
    """The lab cannot start (port taken, daemon died, binary missing...)."""


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22);
    None when it is gone or a zombie (dead, only waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _alive(pid: int, ticks: int) -> bool:
    return start_ticks(pid) == ticks


@dataclass
class Proc:
    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    ticks: int
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, limit: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


@dataclass
class ProcessManager:
    log_dir: Path
    state_dir: Path = STATE_DIR
    procs: list[Proc] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cleanup_stale(self.state_dir)
        self._owner_ticks = start_ticks(os.getpid()) or 0
        self._state = self.state_dir / f"owner-{os.getpid()}.json"
        self._save()

    def _save(self) -> None:
        state = {
            "owner": os.getpid(),
            "owner_ticks": self._owner_ticks,
            "procs": [{"name": p.name, "pid": p.pid, "ticks": p.ticks} for p in self.procs],
            "netns": self.netns,
        }
        tmp = self._state.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self._state)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        stdout_pipe: bool = False,
        stderr_to_stdout: bool = False,
    ) -> Proc:
        log = self.log_dir / f"{name}.log"
        full_env = dict(os.environ)
        full_env.update(env or {})
        handle = log.open("wb")
        try:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout_pipe else handle,
                stderr=subprocess.STDOUT if stderr_to_stdout else handle,
                env=full_env,
                start_new_session=True,  # a Ctrl-C in the test run must not hit daemons first
            )
        except FileNotFoundError as exc:
            raise LabError(f"{name}: cannot run {argv[0]}: {exc}") from exc
        finally:
            handle.close()
        ticks = start_ticks(popen.pid) or 0
        proc = Proc(name, list(argv), popen, ticks, log)
        self.procs.append(proc)
        self._save()
        return proc

    def stop(self, proc: Proc, grace: float = 3.0) -> None:
        if proc.running() and _alive(proc.pid, proc.ticks):
            with contextlib.suppress(ProcessLookupError):
                proc.popen.send_signal(signal.SIGTERM)
            try:
                proc.popen.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.popen.kill()
                proc.popen.wait(grace)
        if proc.popen.stdout:
            proc.popen.stdout.close()
        if proc in self.procs:
            self.procs.remove(proc)
            self._save()

    def add_netns(self, name: str) -> None:
        self.netns.append(name)
        self._save()

    def remove_netns(self, name: str) -> None:
        _delete_netns(name)
        if name in self.netns:
            self.netns.remove(name)
            self._save()

    def close(self) -> None:
        """Stop everything (newest first), delete namespaces, drop the state file."""
        for proc in reversed(list(self.procs)):
            self.stop(proc)
        for name in reversed(list(self.netns)):
            self.remove_netns(name)
        self._state.unlink(missing_ok=True)


def _delete_netns(name: str) -> None:
    if Path(f"/run/netns/{name}").exists():
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def cleanup_stale(state_dir: Path = STATE_DIR) -> list[str]:
    """Undo what crashed runs left: only for owners that are gone. Returns what was done."""
    done: list[str] = []
    for path in sorted(state_dir.glob("owner-*.json")):
        try:
            state = json.loads(path.read_text())
            owner, owner_ticks = int(state["owner"]), int(state["owner_ticks"])
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            continue
        if _alive(owner, owner_ticks):
            continue  # another live lab: not ours to touch
        for rec in reversed(state.get("procs", [])):
            pid, ticks = int(rec["pid"]), int(rec["ticks"])
            if _alive(pid, ticks):
                _kill_recorded(pid, ticks)
                done.append(f"killed {rec.get('name')} pid {pid}")
        for name in state.get("netns", []):
            if str(name).startswith("dotaudit-"):
                _delete_netns(str(name))
                done.append(f"deleted netns {name}")
        path.unlink(missing_ok=True)
    return done


def _kill_recorded(pid: int, ticks: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and _alive(pid, ticks):
        time.sleep(0.05)
    if _alive(pid, ticks):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
