"""A real Dask cluster on 127.0.0.1 for the tests: ``dask scheduler`` and two
``dask worker`` processes, started and stopped by the fixture that uses this."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
START_TIMEOUT = 120.0


@dataclass
class DaskCluster:
    address: str
    scheduler_file: Path
    worker_tmp: Path
    """The workers' TMPDIR: remote inputs are copied here while they are read."""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def client(self) -> Any:
        from distributed import Client

        return Client(self.address, timeout="30s")

    def worker_pids(self) -> dict[str, int]:
        with self.client() as client:
            return dict(client.run(os.getpid))

    def task_states(self) -> dict[str, str]:
        def states(dask_scheduler: Any) -> dict[str, str]:
            return {str(key): task.state for key, task in dask_scheduler.tasks.items()}

        with self.client() as client:
            return dict(client.run_on_scheduler(states))

    def wait_for_workers(self, count: int, timeout: float = START_TIMEOUT) -> None:
        with self.client() as client:
            client.wait_for_workers(count, timeout=timeout)


@contextmanager
def dask_cluster(base: Path, workers: int = 2) -> Iterator[DaskCluster]:
    scheduler_file = base / "scheduler.json"
    worker_tmp = base / "worker-tmp"
    worker_tmp.mkdir()
    logs = base / "logs"
    logs.mkdir()
    env = dict(os.environ, TMPDIR=str(worker_tmp), DASK_DISTRIBUTED__WORKER__DAEMON="False")
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> None:
        with (logs / f"{name}.log").open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [str(BIN / "dask"), *args],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=base,
                    start_new_session=True,
                )
            )

    try:
        start(
            "scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
            "--scheduler-file", str(scheduler_file),
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            if time.monotonic() > deadline or processes[0].poll() is not None:
                raise RuntimeError("dask scheduler did not start: " + _logs(logs))
            time.sleep(0.2)
        time.sleep(0.2)  # the file is written whole, but give the loop a moment
        address = json.loads(scheduler_file.read_text())["address"]
        for number in range(workers):
            start(
                f"worker-{number}", "worker", address, "--nthreads", "1", "--nworkers", "1",
                "--no-dashboard", "--host", "127.0.0.1", "--memory-limit", "0",
                "--local-directory", str(base / f"worker-{number}"),
            )  # fmt: skip
        cluster = DaskCluster(address, scheduler_file, worker_tmp, processes)
        cluster.wait_for_workers(workers)
        yield cluster
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _logs(directory: Path) -> str:
    return " | ".join(p.read_text(errors="replace")[-500:] for p in sorted(directory.iterdir()))
