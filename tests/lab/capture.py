"""tcpdump captures of lab traffic (``--immediate-mode``: without it short captures
come out empty, because packets wait in the kernel buffer when tcpdump is stopped)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.lab.ports import wait_line
from tests.lab.procs import LabError, Proc, ProcessManager

SNAPLEN = 2048


@dataclass
class Capture:
    pm: ProcessManager
    proc: Proc
    path: Path

    def stop(self, settle: float = 0.25, timeout: float = 3.0) -> Path:
        """Stop once the file has stopped growing for ``settle`` seconds (every packet
        already sent has been written), bounded by ``timeout``."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            size = self.path.stat().st_size if self.path.exists() else 0
            if size != last:
                last, since = size, time.monotonic()
            elif time.monotonic() - since >= settle:
                break
            time.sleep(0.05)
        self.pm.stop(self.proc)
        return self.path


def start_capture(
    pm: ProcessManager,
    path: Path,
    interface: str = "lo",
    bpf: str = "",
    netns: str | None = None,
    name: str | None = None,
) -> Capture:
    argv: list[str] = ["ip", "netns", "exec", netns] if netns else []
    argv += [
        "tcpdump",
        "-i",
        interface,
        "-n",
        "-s",
        str(SNAPLEN),
        "--immediate-mode",
        "-U",
        "-Z",
        "root",
    ]
    argv += ["-w", str(path)]
    if bpf:
        argv.append(bpf)
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = pm.start(name or f"tcpdump-{path.stem}", argv, stdout_pipe=True, stderr_to_stdout=True)
    assert proc.popen.stdout is not None
    try:
        wait_line(proc.popen.stdout.fileno(), b"listening on", 10.0)
    except LabError as exc:
        pm.stop(proc)
        raise LabError(f"tcpdump on {interface}: {exc}") from exc
    return Capture(pm, proc, path)


def bpf_any(parts: Sequence[str]) -> str:
    return " or ".join(f"({p})" for p in parts)
