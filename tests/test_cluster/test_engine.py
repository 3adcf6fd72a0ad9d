"""``analyze --cluster`` on a real Dask cluster (a scheduler and two worker processes on
127.0.0.1, started here): the oracle is the local serial ``analyze`` of the same inputs,
finding for finding and row for row (the cluster's order within a list is canonical:
docs/scale.md)."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import DaskCluster, dask_cluster
from tests.conftest import ROOT

SAMPLES = sorted((ROOT / "pcaps").glob("*.pcap*"))
RUN_TIMEOUT = 600


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    with dask_cluster(tmp_path_factory.mktemp("dask")) as running:
        yield running


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The sample captures over HTTP on loopback: (base URL, directory)."""
    directory = tmp_path_factory.mktemp("served")
    for path in SAMPLES:
        shutil.copy(path, directory / path.name)
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", directory
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _dotaudit(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dotaudit", *args],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=cwd,
    )  # fmt: skip


def canonical(path: Path) -> dict[str, Any]:
    """A report with its lists in one order and its time of writing left out."""
    report = json.loads(path.read_text())
    report.pop("generated_at")
    for key, value in report.items():
        if isinstance(value, list) and key != "inputs":
            report[key] = sorted(json.dumps(item, sort_keys=True) for item in value)
    return report


def _both(tmp_path: Path, cluster: str, inputs: list[str], *extra: str) -> tuple[Any, Any]:
    local_out, cluster_out = tmp_path / "local.json", tmp_path / "cluster.json"
    local = _dotaudit("analyze", *inputs, "-o", str(local_out), "-q", *extra)
    remote = _dotaudit(
        "analyze", "--cluster", cluster, *inputs, "-o", str(cluster_out), "-q", *extra
    )
    assert remote.stderr == local.stderr
    assert remote.returncode == local.returncode, remote.stderr
    return canonical(local_out), canonical(cluster_out)


def test_samples_equal_the_local_run(cluster: DaskCluster, tmp_path: Path) -> None:
    local, remote = _both(tmp_path, cluster.address, ["pcaps/"])
    assert len(local["findings"]) > 20
    assert remote == local


def test_with_a_policy_and_its_exit_status(cluster: DaskCluster, tmp_path: Path) -> None:
    policy = "pcaps/loopback-policy.toml"
    local, remote = _both(
        tmp_path, cluster.address, [str(p.relative_to(ROOT)) for p in SAMPLES[:8]],
        "--policy", policy, "--fail-on", "high",
    )  # fmt: skip
    assert any('"DA-FALLBACK-001"' in f for f in local["findings"])
    assert remote == local


def test_public_corpus_equals_the_local_run(
    cluster: DaskCluster, corpus: Path, tmp_path: Path
) -> None:
    captures = sorted(
        str(p) for p in corpus.rglob("*") if p.suffix in (".pcap", ".pcapng", ".cap", ".gz")
    )
    assert len(captures) >= 30
    local, remote = _both(tmp_path, cluster.address, captures, "--fail-on", "none")
    assert remote == local


def test_urls_are_read_by_the_workers(
    cluster: DaskCluster, served: tuple[str, Path], tmp_path: Path
) -> None:
    base, directory = served
    urls = [f"{base}/04-fallback.pcap", f"file://{directory / '09-office.pcap'}"]
    out = tmp_path / "cluster.json"
    run = _dotaudit("analyze", "--cluster", cluster.address, *urls, "-o", str(out), "-q",
                    "--fail-on", "none")  # fmt: skip
    assert run.returncode == 0, run.stderr
    local_out = tmp_path / "local.json"
    _dotaudit("analyze", str(directory / "04-fallback.pcap"), str(directory / "09-office.pcap"),
              "-o", str(local_out), "-q", "--fail-on", "none")  # fmt: skip
    remote, local = canonical(out), canonical(local_out)
    # The report names each input as given; the HTTP one by its URL, hashed as read.
    assert [i["path"] for i in remote["inputs"]] == [urls[0], str(directory / "09-office.pcap")]
    assert [i["sha256"] for i in remote["inputs"]] == [i["sha256"] for i in local["inputs"]]
    here = str(directory / "04-fallback.pcap")
    for key in ("findings", "plaintext_dns", "dot_sessions", "fallback_events"):
        assert remote[key] == sorted(item.replace(here, urls[0]) for item in local[key]), key
    assert list(cluster.worker_tmp.glob("dotaudit-*")) == []  # the copies are gone


def test_unreadable_input_is_one_line_and_exit_2(
    cluster: DaskCluster, served: tuple[str, Path], tmp_path: Path
) -> None:
    base, _ = served
    missing = f"{base}/no-such.pcap"
    run = _dotaudit("analyze", "--cluster", cluster.address, "pcaps/04-fallback.pcap", missing,
                    "-o", str(tmp_path / "out.json"))  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.startswith(f"dotaudit: {missing}: cannot read")
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    not_capture = tmp_path / "notes.pcap"
    not_capture.write_text("not a capture\n")
    run = _dotaudit("analyze", "--cluster", cluster.address, str(not_capture))
    assert run.returncode == 2
    assert run.stderr == f"dotaudit: {not_capture}: not a pcap or pcapng file\n"


def _distinct_captures(directory: Path, count: int, packets: int) -> list[str]:
    paths = []
    for seed in range(count):
        out = directory / f"mix-{seed}.pcap"
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "gen_capture.py"), "--packets", str(packets),
             "--seed", str(seed + 1), "-o", str(out)],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        paths.append(str(out))
    return paths


_SHUFFLED_RUN = """
import json, sys
from dotaudit.cluster.engine import analyze_on_cluster
from dotaudit.detect.base import Context
from dotaudit.render.json import render_json
report = analyze_on_cluster(sys.argv[3:], Context(), sys.argv[1], shuffle=True)
open(sys.argv[2], "w").write(render_json(report))
"""


@pytest.mark.parametrize("shuffled", [False, True], ids=["one task per input", "shuffled"])
def test_a_worker_lost_mid_run_gives_the_same_report(
    cluster: DaskCluster, tmp_path: Path, shuffled: bool
) -> None:
    inputs = _distinct_captures(tmp_path, 4, 15_000)
    local_out, cluster_out = tmp_path / "local.json", tmp_path / "cluster.json"
    _dotaudit("analyze", *inputs, "-o", str(local_out), "-q", "--fail-on", "none")
    _, victim_pid = sorted(cluster.worker_pids().items())[0]
    if shuffled:
        command = [sys.executable, "-c", _SHUFFLED_RUN, cluster.address, str(cluster_out), *inputs]
    else:
        command = [sys.executable, "-m", "dotaudit", "analyze", "--cluster", cluster.address,
                   *inputs, "-o", str(cluster_out), "-q", "--fail-on", "none"]  # fmt: skip
    run = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # Kill a worker once the run holds results on the cluster: the first input read.
        deadline = time.monotonic() + RUN_TIMEOUT
        while not any(
            k.startswith(("map-", "analyze-")) and s == "memory"
            for k, s in cluster.task_states().items()
        ):
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        os.kill(victim_pid, signal.SIGKILL)
        _, stderr = run.communicate(timeout=RUN_TIMEOUT)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, stderr
    assert canonical(cluster_out) == canonical(local_out)
    cluster.wait_for_workers(2)  # the nanny starts a new worker


def test_every_input_shuffled_on_the_cluster_equals_the_local_run(
    cluster: DaskCluster, tmp_path: Path
) -> None:
    from dotaudit.cluster.engine import analyze_on_cluster
    from dotaudit.detect.base import Context
    from dotaudit.model.policy import load_policy
    from dotaudit.pipeline import analyze
    from dotaudit.render.json import render_json

    context = Context(policy=load_policy(ROOT / "pcaps" / "loopback-policy.toml"))
    remote = analyze_on_cluster([str(p) for p in SAMPLES], context, cluster.address, shuffle=True)
    local = analyze(list(SAMPLES), context)
    (tmp_path / "remote.json").write_text(render_json(remote))
    (tmp_path / "local.json").write_text(render_json(local))
    assert canonical(tmp_path / "remote.json") == canonical(tmp_path / "local.json")


def test_interrupt_cancels_the_cluster_s_tasks(cluster: DaskCluster, tmp_path: Path) -> None:
    inputs = _distinct_captures(tmp_path, 3, 15_000)
    run = subprocess.Popen(
        [sys.executable, "-m", "dotaudit", "analyze", "--cluster", cluster.address, *inputs,
         "-o", str(tmp_path / "out.json"), "-q"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + RUN_TIMEOUT
    while not any(k.startswith(("map-", "analyze-")) for k in cluster.task_states()):
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 130
    assert "Traceback" not in stderr
    assert not (tmp_path / "out.json").exists()
    deadline = time.monotonic() + 60
    while cluster.task_states():  # the client is gone and its tasks with it
        assert time.monotonic() < deadline, cluster.task_states()
        time.sleep(0.2)


def test_local_cluster_equals_the_local_run(tmp_path: Path) -> None:
    inputs = ["pcaps/04-fallback.pcap", "pcaps/09-office.pcap"]
    local, remote = _both(tmp_path, "local:2", inputs, "--fail-on", "none")
    assert remote == local


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("local:0", "local:N needs a worker count of 1 or more"),
        ("127.0.0.1:1", "give tcp://HOST:PORT or local:N"),
        ("tcp://127.0.0.1:1", "cannot reach the scheduler"),
    ],
)
def test_cluster_address_errors(address: str, message: str) -> None:
    run = _dotaudit("analyze", "--cluster", address, "pcaps/04-fallback.pcap")
    assert run.returncode == 2
    assert run.stderr.startswith(f"dotaudit: --cluster {address}: ")
    assert message in run.stderr and run.stderr.count("\n") == 1


def test_without_dask_one_clear_error() -> None:
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "from dotaudit.cli import main\n"
        "sys.exit(main(['analyze', '--cluster', 'local:1', 'pcaps/04-fallback.pcap']))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)  # fmt: skip
    assert run.returncode == 2
    assert run.stderr == "dotaudit: --cluster needs Dask: pip install 'dotaudit[cluster]'\n"


@pytest.mark.parametrize("option", [["--workers", "2"], ["--evidence", "ev"]])
def test_options_that_need_the_captures_here_are_refused(option: list[str]) -> None:
    run = _dotaudit("analyze", "--cluster", "local:1", "pcaps/04-fallback.pcap", *option)
    assert run.returncode == 2
    assert run.stderr.startswith("dotaudit: ") and run.stderr.count("\n") == 1


def test_a_rotated_capture_set_equals_the_local_run(cluster: DaskCluster, tmp_path: Path) -> None:
    from tests import rotation

    office = ROOT / "pcaps" / "09-office.pcap"
    files = rotation.tcpdump_size_names(rotation.pieces(office, tmp_path, [47, 47, 47, 47, 44]))
    local, remote = _both(tmp_path, cluster.address, [str(f) for f in files], "--fail-on", "none")
    # One set of five files: each listed with its own summary, frames named in their file.
    assert [item["path"] for item in remote["inputs"]] == [str(f) for f in files]
    assert all(item["set"]["members"] == 5 for item in remote["inputs"])
    assert any("frames_by_file" in finding for finding in remote["findings"])
    assert remote == local
