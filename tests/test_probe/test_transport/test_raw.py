"""Raw SYNs with scapy on loopback (root only, as the lab). Oracle: the kernel's own TCP
answers: a SYN-ACK from a listening socket, a RST from a closed port, both with Linux's
default TTL of 64 (net.ipv4.ip_default_ttl)."""

from __future__ import annotations

import ast
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import dotaudit.probe
from dotaudit.probe.transport import Transport, can_send_raw
from tests.test_probe.test_runner import closed_port

pytestmark = pytest.mark.skipif(not can_send_raw(), reason="raw sockets need root")


def test_listening_port_answers_syn_ack() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        net = Transport()
        reply = net.raw_syn("127.0.0.1", server.getsockname()[1], 2.0)
    assert (reply.kind, reply.ttl) == ("syn-ack", 64)
    assert net.stats.raw_probes == 1


def test_closed_port_answers_rst() -> None:
    reply = Transport().raw_syn("127.0.0.1", closed_port(), 2.0)
    assert (reply.kind, reply.ttl) == ("rst", 64)
    assert reply.to_dict()["kind"] == "rst"


def test_a_probe_run_does_not_load_scapy() -> None:
    # scapy is imported inside raw_syn: loading the prober (and its transport) must not
    # pay for it (about a second) nor need it.
    code = (
        "import sys, dotaudit.probe.runner; print(any(m.startswith('scapy') for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_only_the_raw_module_imports_scapy_in_the_probe() -> None:
    probe = Path(dotaudit.probe.__file__).parent
    importers = set()
    for path in probe.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(name.split(".")[0] == "scapy" for name in names):
                importers.add(path.relative_to(probe).as_posix())
    assert importers == {"transport/raw.py"}
