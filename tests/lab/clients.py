"""Real DNS clients run against the lab: kdig (knot-dnsutils), stubby, getdns_query.

stubby and getdns default to public resolvers (or to recursing from the root), so
every helper here insists on an explicit upstream.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Answer:
    status: str
    padding: int | None
    received: int | None
    tls: str | None


@dataclass(frozen=True, slots=True)
class KdigResult:
    returncode: int
    stdout: str
    stderr: str
    elapsed: float
    answers: tuple[Answer, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return bool(self.answers) and all(a.status == "NOERROR" for a in self.answers)

    @property
    def errors(self) -> list[str]:
        return [
            line for line in (self.stdout + self.stderr).splitlines() if line.startswith(";; ERROR")
        ]


def netns_prefix(netns: str | None) -> list[str]:
    return ["ip", "netns", "exec", netns] if netns else []


def kdig_argv(
    server: str,
    names: Sequence[str | tuple[str, str]],
    port: int = 853,
    tls: bool = True,
    ca: Path | None = None,
    hostname: str | None = None,
    pin: str | None = None,
    padding: bool = True,
    keepalive: bool = False,
    keepopen: bool = False,
    tcp: bool = False,
    timeout: float = 2.0,
    source: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    argv = ["kdig", f"@{server}", "-p", str(port), f"+time={max(1, round(timeout))}", "+retry=0"]
    if source:
        argv += ["-b", source]
    if tls and not (ca or pin or hostname):
        argv.append("+tls")  # opportunistic: no authentication at all
    if ca:
        argv.append(f"+tls-ca={ca}")
    if hostname:
        argv.append(f"+tls-hostname={hostname}")
    if pin:
        argv.append(f"+tls-pin={pin}")
    if padding:
        argv.append("+padding")
    if keepalive:
        argv.append("+ednsopt=11")  # 3.2.6 has no +keepalive: send an empty option 11
    if keepopen:
        argv.append("+keepopen")
    if tcp:
        argv.append("+tcp")
    argv += list(extra)
    for item in names:
        name, qtype = (item, "A") if isinstance(item, str) else item
        argv += [name, qtype]
    return argv


_STATUS = re.compile(r"->>HEADER<<- opcode: \w+; status: (\w+)")
_PADDING = re.compile(r";; PADDING: (\d+) B")
_RECEIVED = re.compile(r";; Received (\d+) B")
_TLS = re.compile(r";; TLS session \((TLS[\d.]+)\)")


def parse_kdig(stdout: str) -> tuple[Answer, ...]:
    answers: list[Answer] = []
    tls: str | None = None
    block: list[str] = []

    def flush() -> None:
        text = "\n".join(block)
        status = _STATUS.search(text)
        if status:
            pad, rec = _PADDING.search(text), _RECEIVED.search(text)
            answers.append(
                Answer(
                    status.group(1),
                    int(pad.group(1)) if pad else None,
                    int(rec.group(1)) if rec else None,
                    tls,
                )
            )

    for line in stdout.splitlines():
        tls_match = _TLS.search(line)
        if tls_match:
            tls = tls_match.group(1)
        if "->>HEADER<<-" in line and block:
            flush()
            block = []
        block.append(line)
    flush()
    return tuple(answers)


def run_kdig(
    argv: Sequence[str],
    netns: str | None = None,
    timeout: float = 30.0,
    keylog: Path | None = None,
) -> KdigResult:
    """Run kdig; ``keylog`` makes GnuTLS write TLS secrets (SSLKEYLOGFILE) there."""
    env = dict(os.environ)
    if keylog is not None:
        env["SSLKEYLOGFILE"] = str(keylog)
    start = time.monotonic()
    done = subprocess.run(
        netns_prefix(netns) + list(argv), capture_output=True, text=True, timeout=timeout, env=env
    )
    elapsed = time.monotonic() - start
    return KdigResult(done.returncode, done.stdout, done.stderr, elapsed, parse_kdig(done.stdout))


def kdig(
    server: str, *names: str | tuple[str, str], netns: str | None = None, **opts: object
) -> KdigResult:
    return run_kdig(kdig_argv(server, names, **opts), netns=netns)  # type: ignore[arg-type]


STUBBY_LISTEN = "127.53.9.1"


def stubby_config(
    path: Path,
    upstream: str,
    ca: Path,
    auth_name: str | None,
    pin: str | None = None,
    listen: str = STUBBY_LISTEN,
    port: int = 853,
    strict: bool = True,
    padding: int = 128,
    idle_ms: int = 10_000,
) -> Path:
    """A complete stubby config with exactly one upstream: its built-in defaults point
    at public resolvers, so stubby never runs without this."""
    lines = [
        "resolution_type: GETDNS_RESOLUTION_STUB",
        "dns_transport_list:",
        "  - GETDNS_TRANSPORT_TLS",
        "tls_authentication: "
        + ("GETDNS_AUTHENTICATION_REQUIRED" if strict else "GETDNS_AUTHENTICATION_NONE"),
        f"tls_query_padding_blocksize: {padding}",
        "edns_client_subnet_private: 1",
        "round_robin_upstreams: 0",
        f"idle_timeout: {idle_ms}",
        f'tls_ca_file: "{ca}"',
        f'appdata_dir: "{path.parent}"',
        "listen_addresses:",
        f"  - {listen}@53",
        "upstream_recursive_servers:",
        f"  - address_data: {upstream}",
        f"    tls_port: {port}",
    ]
    if auth_name:
        lines.append(f'    tls_auth_name: "{auth_name}"')
    if pin:
        lines += ["    tls_pubkey_pinset:", '      - digest: "sha256"', f"        value: {pin}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def stubby_argv(conf: Path) -> list[str]:
    return ["stubby", "-C", str(conf), "-v", "6"]


def getdns_argv(
    upstream: str,
    name: str,
    qtype: str = "A",
    port: int = 853,
    auth_name: str | None = None,
    strict: bool = True,
    tls: bool = True,
    padding: int | None = 128,
) -> list[str]:
    """getdns_query in stub mode against one named upstream (its default mode recurses
    from the root servers). It has no CA option: pass SSL_CERT_FILE in the environment."""
    target = f"@{upstream}" + (f"#{port}" if tls else f"@{port}")
    if tls and auth_name:
        target += f"~{auth_name}"
    argv = ["getdns_query", "-s", "-j", "-t", "3000"]
    argv += ["-l", "L" if tls else "U"]
    if tls:
        argv.append("-m" if strict else "-n")
        if padding is not None:
            argv += ["-P", str(padding)]
    return [*argv, target, name, qtype]


def run_getdns(
    argv: Sequence[str], ca: Path, netns: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {"SSL_CERT_FILE": str(ca), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    return subprocess.run(
        netns_prefix(netns) + list(argv), capture_output=True, text=True, env=env, timeout=30
    )


def getdns_ok(done: subprocess.CompletedProcess[str]) -> bool:
    """True when getdns_query -j reported GETDNS_RESPSTATUS_GOOD (900) with answers."""
    try:
        reply = json.loads(done.stdout)
    except ValueError:
        return False
    return bool(reply.get("status") == 900 and reply.get("just_address_answers"))
