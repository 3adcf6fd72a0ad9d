"""The loopback lab: Unbound variants, the dnsdist interceptor (which also serves DoH)
and the DoQ server.

Each service has its own 127.53.x.y address so captures look like a real network.
Port 853 (and 53) below 1024 means the lab needs root, as CI has.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab.pki import HOSTNAME, Pki, make_pki
from tests.lab.ports import require_free, wait_line, wait_tcp
from tests.lab.procs import LabError, Proc, ProcessManager
from tests.lab.unbound import UnboundVariant, write_instance
from tests.lab.zone import DDR_ADDRESS, DDR_ALIAS_ADDRESS, DDR_ALIAS_RECORDS, DDR_RECORDS

REQUIRED_BINARIES = ("unbound", "dnsdist", "kdig", "tcpdump", "nft", "ip")

VARIANTS: tuple[UnboundVariant, ...] = (
    UnboundVariant("padded", ("127.53.0.1", "::1"), notes="pad 468 + EDNS keepalive"),
    UnboundVariant("unpadded", ("127.53.0.2",), pad=False),
    UnboundVariant("no_keepalive", ("127.53.0.3",), keepalive=False),
    UnboundVariant(
        "short_timeout", ("127.53.0.4",), keepalive_ms=2000, idle_ms=2000, notes="2 s idle"
    ),
    UnboundVariant("tls12", ("127.53.0.5",), tls12_only=True),
    UnboundVariant("expired", ("127.53.1.1",), leaf="expired"),
    UnboundVariant("expiring", ("127.53.1.2",), leaf="expiring"),
    UnboundVariant("wrong_host", ("127.53.1.3",), leaf="wrong_host"),
    UnboundVariant("self_signed", ("127.53.1.4",), leaf="self_signed"),
    UnboundVariant("untrusted", ("127.53.1.5",), leaf="untrusted"),
    UnboundVariant(
        "ddr", (DDR_ADDRESS,), local_data=DDR_RECORDS, identity="lab-ddr", notes="DDR designations"
    ),
    UnboundVariant(
        "ddr_alias",
        (DDR_ALIAS_ADDRESS,),
        leaf="wrong_host",
        local_data=DDR_ALIAS_RECORDS,
        identity="lab-ddr-alias",
        notes="DDR via AliasMode, leaf without IP SANs",
    ),
)
INTERCEPT_ADDRESS = "127.53.2.1"
INTERCEPT_BACKEND = "padded"
DOQ_ADDRESS = "127.53.3.1"
# dnsdist's DoH listener: the probe's defaults (TCP 443, /dns-query) find it unaided. It
# presents the valid dns.test leaf and relays to the padded Unbound over plain DNS 53.
DOH_ADDRESS = "127.53.4.1"
DOH_PORT = 443
DOH_PATH = "/dns-query"
# Every address any lab (loopback, namespaces, office) puts in a certificate's IP SANs.
CERT_IPS = (
    *(a for v in VARIANTS for a in v.addresses),
    INTERCEPT_ADDRESS,
    DOQ_ADDRESS,
    DOH_ADDRESS,
    "203.0.113.53",
    "203.0.113.54",
    "203.0.113.55",
    "203.0.113.56",
    "2001:db8:53::53",
)


@dataclass(frozen=True, slots=True)
class Resolver:
    """What a test needs to talk to one lab service."""

    name: str
    address: str
    tls_port: int
    plain_port: int | None
    hostname: str
    leaf: str
    pin: str
    transport: str = "dot"
    """"dot", "doq" or "doh"."""
    pad: bool = True
    keepalive: bool = True
    keepalive_ms: int = 120_000
    tls12_only: bool = False


def missing_prerequisite() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "the lab needs root (ports 53/853, network namespaces)"
    for binary in REQUIRED_BINARIES:
        if shutil.which(binary) is None:
            return f"{binary} not installed (make debs)"
    return None


@dataclass
class Lab:
    base: Path
    pki: Pki
    pm: ProcessManager
    resolvers: dict[str, Resolver] = field(default_factory=dict)
    _own_base: bool = False

    def __getitem__(self, name: str) -> Resolver:
        return self.resolvers[name]

    @property
    def ca(self) -> Path:
        return self.pki.ca_cert

    def close(self) -> None:
        self.pm.close()
        if self._own_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_lab(base: Path | None = None, timeout: float = 10.0) -> Lab:
    """Start every loopback service and wait until each accepts connections."""
    reason = missing_prerequisite()
    if reason:
        raise LabError(reason)
    own = base is None
    base = Path(tempfile.mkdtemp(prefix="dotaudit-lab-")) if base is None else base
    pki = make_pki(base / "pki", CERT_IPS)
    wanted = [(h, p, False) for v in VARIANTS for h, p in v.tcp_ports()]
    wanted += [(h, p, True) for v in VARIANTS for h, p in v.tcp_ports()]
    wanted += [(INTERCEPT_ADDRESS, 853, False), (DOQ_ADDRESS, 853, True)]
    wanted.append((DOH_ADDRESS, DOH_PORT, False))
    require_free(wanted)
    pm = ProcessManager(log_dir=base / "logs")
    lab = Lab(base, pki, pm, _own_base=own)
    try:
        waits: list[tuple[Proc, str, int]] = []
        for variant in VARIANTS:
            conf, env = write_instance(variant, pki, base)
            proc = pm.start(f"unbound-{variant.name}", ["unbound", "-d", "-c", str(conf)], env)
            waits += [(proc, h, p) for h, p in variant.tcp_ports()]
            leaf = pki.leaf(variant.leaf)
            lab.resolvers[variant.name] = Resolver(
                name=variant.name,
                address=variant.address,
                tls_port=853,
                plain_port=53,
                hostname=HOSTNAME,
                leaf=variant.leaf,
                pin=leaf.pin,
                pad=variant.pad,
                keepalive=variant.keepalive,
                keepalive_ms=variant.keepalive_ms,
                tls12_only=variant.tls12_only,
            )
        backend = next(v for v in VARIANTS if v.name == INTERCEPT_BACKEND)
        dd_conf = write_dnsdist(
            base, pki, INTERCEPT_ADDRESS, f"{backend.address}:53", doh_address=DOH_ADDRESS
        )
        proc = pm.start("dnsdist", dnsdist_argv(dd_conf))
        waits += [(proc, INTERCEPT_ADDRESS, 853), (proc, DOH_ADDRESS, DOH_PORT)]
        lab.resolvers["intercept"] = Resolver(
            "intercept", INTERCEPT_ADDRESS, 853, None, HOSTNAME, "intercept",
            pki.leaf("intercept").pin, pad=backend.pad,
        )  # fmt: skip
        # dnsdist relays in cleartext and Unbound pads only over TLS: DoH answers unpadded.
        lab.resolvers["doh"] = Resolver(
            "doh", DOH_ADDRESS, DOH_PORT, None, HOSTNAME, "valid", pki.leaf("valid").pin,
            transport="doh", pad=False, keepalive=False,
        )  # fmt: skip
        doq = start_doq(pm, pki, DOQ_ADDRESS, 853)
        lab.resolvers["doq"] = Resolver(
            "doq", DOQ_ADDRESS, 853, None, HOSTNAME, "valid", pki.leaf("valid").pin,
            transport="doq", keepalive=False,
        )  # fmt: skip
        assert doq.popen.stdout is not None
        wait_line(doq.popen.stdout.fileno(), b"READY", timeout)
        deadline = time.monotonic() + timeout
        for proc, host, port in waits:
            left = max(0.1, deadline - time.monotonic())
            try:
                wait_tcp(host, port, left, alive=proc.running)
            except LabError as exc:
                raise LabError(f"{proc.name}: {exc}\n{proc.log_tail()}") from exc
    except BaseException:
        lab.close()
        raise
    return lab


@dataclass(frozen=True, slots=True)
class DohListener:
    """A dnsdist DoH frontend: ``address:port`` serving ``path`` with its own leaf."""

    address: str
    cert: Path
    key: Path
    port: int = DOH_PORT
    path: str = DOH_PATH


def dnsdist_config(
    listen: str, cert: Path, key: Path, backend: str, source: str, doh: DohListener | None = None
) -> str:
    lines = [
        'setSecurityPollSuffix("")',  # its default asks public DNS for advisories
        'setACL({"0.0.0.0/0", "::/0"})',
        f'addTLSLocal("{listen}:853", "{cert}", "{key}", {{provider="openssl"}})',
        f'newServer({{address="{backend}", source="{source}", checkInterval=3600}})',
    ]
    if doh is not None:
        lines.append(doh_local(doh))
    return "\n".join([*lines, ""])


def doh_local(doh: DohListener) -> str:
    # h2o negotiates ALPN h2 (or http/1.1); only POST/GET on the path reach DNS.
    return f'addDOHLocal("{doh.address}:{doh.port}", "{doh.cert}", "{doh.key}", {{"{doh.path}"}})'


def doh_only_config(listeners: list[DohListener], backend: str, source: str) -> str:
    """A dnsdist that serves only DoH, one listener per leaf (tests with bad leaves)."""
    return "\n".join(
        [
            'setSecurityPollSuffix("")',
            'setACL({"0.0.0.0/0", "::/0"})',
            f'newServer({{address="{backend}", source="{source}", checkInterval=3600}})',
            *(doh_local(d) for d in listeners),
            "",
        ]
    )


def write_dnsdist(
    base: Path,
    pki: Pki,
    listen: str,
    backend: str,
    name: str = "dnsdist",
    doh_address: str | None = None,
) -> Path:
    """The interceptor's config; with ``doh_address`` also a DoH listener there that
    presents the valid leaf."""
    leaf = pki.leaf("intercept")
    valid = pki.leaf("valid")
    doh = DohListener(doh_address, valid.cert, valid.key) if doh_address else None
    conf = base / f"{name}.conf"
    conf.write_text(dnsdist_config(listen, leaf.cert, leaf.key, backend, listen, doh))
    return conf


def dnsdist_argv(conf: Path) -> list[str]:
    return ["dnsdist", "--supervised", "--disable-syslog", "-C", str(conf)]


def doq_argv(host: str, port: int, pki: Pki) -> list[str]:
    leaf = pki.leaf("valid")
    return [
        sys.executable, "-m", "tests.lab.doq_server", "--host", host, "--port", str(port),
        "--cert", str(leaf.cert), "--key", str(leaf.key),
    ]  # fmt: skip


def start_doq(pm: ProcessManager, pki: Pki, host: str, port: int) -> Proc:
    return pm.start("doq", doq_argv(host, port, pki), stdout_pipe=True)
