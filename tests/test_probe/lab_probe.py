"""Helpers of the probe's lab tests: a probe with a short idle wait, the check results it
gave, getdns_server_mon as the oracle, and an Unbound whose one zone answers slowly
(out-of-order responses from a real server)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import dns.message
import dns.rrset

from dotaudit.probe.base import CheckAttempt, CheckOptions, ProbeConfig
from dotaudit.probe.runner import TargetResult, run_target
from dotaudit.probe.target import parse_target
from tests.lab.lab import Lab
from tests.lab.ports import require_free, wait_tcp
from tests.lab.unbound import UnboundVariant, write_instance

QNAME = "www.lab.test"
DOT_VARIANTS = ("padded", "unpadded", "no_keepalive", "short_timeout", "tls12", "expired",
                "expiring", "wrong_host", "self_signed", "untrusted", "intercept")  # fmt: skip
"""Every lab resolver that speaks DoT on 853."""
IDLE_WAIT = 3.5
"""Short: only the short_timeout variant (2 s) is meant to close within it."""
HAVE_GETDNS = shutil.which("getdns_server_mon") is not None

# getdns_server_mon's OOOR test asks these fixed names (src/tools/getdns_server_mon.c).
OOOR_GOOD = "getdnsapi.net."
OOOR_SLOW_ZONE = "delay.getdnsapi.net."
SLOW_ADDRESS = "127.53.9.2"
SLOW_PORT = 5353
SLOW_DELAY = 0.4
OOOR_ADDRESS = "127.53.9.1"


def probe(lab: Lab, variant: str, checks: set[str] | None = None, **options: Any) -> TargetResult:
    resolver = lab[variant]
    opts = CheckOptions(**{"max_idle_wait": IDLE_WAIT, **options})
    config = ProbeConfig(ca_file=str(lab.ca), qname=QNAME, timeout=2.0, options=opts,
                         checks=frozenset(checks) if checks else None)  # fmt: skip
    return run_target(parse_target(f"{resolver.hostname}@{resolver.address}"), config)


def attempt(result: TargetResult, check_id: str) -> CheckAttempt:
    found = result.attempt(check_id)
    assert found is not None, f"{check_id} did not run"
    return found


def status(result: TargetResult, check_id: str) -> str:
    return attempt(result, check_id).status.value


def evidence(result: TargetResult, check_id: str) -> dict[str, object]:
    return attempt(result, check_id).evidence


def getdns(lab: Lab, address: str, *test: str) -> subprocess.CompletedProcess[str]:
    """getdns_server_mon's ``test`` against the lab DoT server at ``address`` (upstream
    syntax ``@IP#PORT~name``; the CA in SSL_CERT_FILE; ``-v`` makes it say why)."""
    return subprocess.run(
        ["getdns_server_mon", "-M", "-v", "-T", f"@{address}#853~dns.test", *test],
        capture_output=True, text=True, timeout=60,
        env={"SSL_CERT_FILE": str(lab.ca), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )  # fmt: skip


class SlowAuthority:
    """A UDP DNS server that answers every AAAA after ``SLOW_DELAY`` seconds: the upstream
    that makes one zone of the real Unbound below slow."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((SLOW_ADDRESS, SLOW_PORT))
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            timer = threading.Timer(SLOW_DELAY, self._answer, (data, peer))
            timer.daemon = True
            timer.start()

    def _answer(self, data: bytes, peer: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            question = query.question[0]
            reply.answer.append(
                dns.rrset.from_text(question.name, 1, "IN", "AAAA", "2001:db8::400")
            )
            reply.flags |= 0x0400  # AA
            self.sock.sendto(reply.to_wire(), peer)
        except Exception:  # a closed socket at teardown
            return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


SLOW_CONF = f"""
server:
do-not-query-localhost: no
local-zone: "{OOOR_SLOW_ZONE}" transparent
local-data: "{OOOR_GOOD} 300 IN AAAA 2001:db8::53"
forward-zone:
name: "{OOOR_SLOW_ZONE}"
forward-addr: {SLOW_ADDRESS}@{SLOW_PORT}
"""


def start_slow_unbound(lab: Lab) -> tuple[SlowAuthority, object]:
    """A real Unbound on OOOR_ADDRESS whose ``*.delay.getdnsapi.net`` answers are slow."""
    require_free([(OOOR_ADDRESS, 853, False), (SLOW_ADDRESS, SLOW_PORT, True)])
    variant = UnboundVariant("ooor", (OOOR_ADDRESS,), plain_port=None)
    conf, env = write_instance(variant, lab.pki, Path(lab.base))
    conf.write_text(conf.read_text() + SLOW_CONF)
    authority = SlowAuthority()
    proc = lab.pm.start("unbound-ooor", ["unbound", "-d", "-c", str(conf)], env)
    wait_tcp(OOOR_ADDRESS, 853, 10.0, alive=proc.running)
    time.sleep(0.1)
    return authority, proc
