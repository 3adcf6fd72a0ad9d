"""What a check is, what running one yields, and the context checks share.

A check is one file under ``probe/checks/`` defining a :class:`Check` subclass with its
stable ``id``, the RFC section it tests, a requirement ``level``, the checks it
``depends_on`` (they must pass or warn, else this one is skipped), the checks it merely
runs ``after`` (it reads their results if present), a time ``budget`` and the ``advice``
its finding gives when it fails or warns. ``run`` returns an :class:`Outcome` (pass, warn,
fail, skip when it could not be tested, not-applicable when there is nothing to test);
the runner wraps it into a :class:`CheckAttempt`. A check never does I/O itself: it asks
the :class:`CheckContext`, whose network calls live in ``probe/transport/``, and whose TLS
connections are shared through a cache so that a full audit stays within a handful of
handshakes.
"""

from __future__ import annotations

import datetime as dt
import ssl
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar

import dns.message
import dns.name
import dns.rdatatype

from dotaudit.model.findings import Finding
from dotaudit.probe.target import ProbeTarget
from dotaudit.probe.tls_context import client_context
from dotaudit.probe.transport import Deadline, ProbeError, TlsConnection, Transport

DEFAULT_TIMEOUT = 3.0
"""Seconds one network operation (connect, handshake, one answer) may take by default."""
DEFAULT_TARGET_BUDGET = 90.0


class CheckStatus(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"
    """Not run: a check it needs did not pass, or it needs --online (a budget that ran out
    is an ERROR instead: the audit is incomplete)."""
    NOT_APPLICABLE = "not-applicable"
    """Run, but the target offers nothing it could test (no pin given, no DoQ server ...)."""


class Level(StrEnum):
    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a check's ``run`` returns; ``reason`` says why it is not a plain pass."""

    status: CheckStatus
    evidence: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    findings: tuple[Finding, ...] = ()


def passed(evidence: dict[str, Any] | None = None, reason: str | None = None) -> Outcome:
    return Outcome(CheckStatus.PASS, evidence or {}, reason)


def warned(reason: str, evidence: dict[str, Any] | None = None) -> Outcome:
    return Outcome(CheckStatus.WARN, evidence or {}, reason)


def failed(reason: str, evidence: dict[str, Any] | None = None) -> Outcome:
    return Outcome(CheckStatus.FAIL, evidence or {}, reason)


NEEDS_INTERNET = "needs internet (an online-only check; run with --online)"


def skipped(reason: str, evidence: dict[str, Any] | None = None) -> Outcome:
    return Outcome(CheckStatus.SKIP, evidence or {}, reason)


def not_applicable(reason: str, evidence: dict[str, Any] | None = None) -> Outcome:
    return Outcome(CheckStatus.NOT_APPLICABLE, evidence or {}, reason)


def errored(reason: str, evidence: dict[str, Any] | None = None) -> Outcome:
    return Outcome(CheckStatus.ERROR, evidence or {}, reason)


@dataclass(frozen=True, slots=True)
class CheckAttempt:
    """One check's result for one target: the ``checks[]`` item of the report."""

    id: str
    status: CheckStatus
    level: Level
    rfc: str
    evidence: dict[str, Any]
    error_reason: str | None
    title: str = ""
    findings: tuple[Finding, ...] = ()
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status.value,
            "level": self.level.value,
            "rfc": self.rfc,
            "evidence": self.evidence,
            "error_reason": self.error_reason,
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass(frozen=True)
class CheckOptions:
    """Settings of single checks. None leaves the check's own default; the ports and
    sample counts have no command-line option and exist for tests against the lab."""

    online: bool = False
    """Run the checks that need the resolver to reach the internet (``--online``)."""
    max_idle_wait: float | None = None
    """keepalive: longest wait for the server's idle close (``--max-idle-wait``)."""
    slow_qname: str | None = None
    """pipelining: a name the resolver answers slowly (``--slow-qname``)."""
    plain_port: int | None = None
    """latency, hijack.53: the port of plaintext DNS (53)."""
    doh_port: int | None = None
    doh_path: str | None = None
    doq_port: int | None = None
    latency_samples: int | None = None
    reuse_queries: int | None = None

    def get(self, name: str) -> Any:
        """The option called ``name``; a name that is no field is a bug, not a default."""
        if name not in _CHECK_OPTION_NAMES:
            raise KeyError(f"no check option {name!r}")
        return getattr(self, name)


_CHECK_OPTION_NAMES = frozenset(f.name for f in fields(CheckOptions))


@dataclass(frozen=True)
class ProbeConfig:
    """Options shared by every target of one ``dotaudit probe`` run."""

    name: str | None = None
    """Authentication domain name for targets that do not carry their own."""
    pins: tuple[str, ...] = ()
    ca_file: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    target_budget: float = DEFAULT_TARGET_BUDGET
    mode: str = "strict"
    qname: str = "example.com"
    checks: frozenset[str] | None = None
    """Only these check IDs (their dependencies run too); None means all."""
    options: CheckOptions = CheckOptions()
    """Settings of single checks (``--max-idle-wait`` ...)."""
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    """Certificate dates are judged against this clock (the probe's own time)."""


@dataclass
class Handshake:
    """The one strict-mode handshake that cert.*, interception and DNS checks share.

    The chain is verified by OpenSSL against ``--ca`` or the system store; the name is
    matched separately (``cert.name``) so that each failure gets its own reason. When
    verification fails, the connection is made again without verification so that the
    certificate can still be examined and opportunistic behaviour measured.
    """

    connection: TlsConnection | None = None
    context: ssl.SSLContext | None = None
    verified: bool = False
    verify_error: str | None = None
    error: ProbeError | None = None
    chain: list[bytes] = field(default_factory=list)
    verified_chain: list[bytes] = field(default_factory=list)

    def require(self) -> TlsConnection:
        if self.connection is None:
            raise self.error or ProbeError("protocol", "no TLS connection")
        return self.connection


class CheckContext:
    """Everything a check may use: the target, the options, the network, earlier results."""

    def __init__(
        self,
        target: ProbeTarget,
        config: ProbeConfig,
        transport: Transport | None = None,
    ) -> None:
        self.target = target
        self.config = config
        self.net = transport or Transport()
        self.results: dict[str, CheckAttempt] = {}
        self.target_deadline = Deadline(config.target_budget)
        self.deadline = self.target_deadline
        """The running check's deadline (set by the runner)."""
        self.cache: dict[str, Any] = {}
        self._connections: list[TlsConnection] = []

    # --- target --------------------------------------------------------------------

    @property
    def address(self) -> str:
        if self.target.address is None:
            raise ProbeError("resolve", f"{self.target.target}: no address")
        return self.target.address

    @property
    def port(self) -> int:
        return self.target.port

    @property
    def name(self) -> str | None:
        """The authentication domain name (RFC 8310 §6.1): NAME@ wins over --name,
        which wins over the hostname a target was given as."""
        return self.target.name or self.config.name or self.target.hostname

    @property
    def sni(self) -> str | None:
        return self.name

    # --- time ----------------------------------------------------------------------

    def op(self, cap: float | None = None) -> Deadline:
        """A deadline for one network operation inside the check's budget."""
        return self.deadline.sub(self.config.timeout if cap is None else cap)

    def now(self) -> dt.datetime:
        return self.config.now()

    # --- earlier results -----------------------------------------------------------

    def status(self, check_id: str) -> CheckStatus | None:
        attempt = self.results.get(check_id)
        return attempt.status if attempt else None

    def evidence(self, check_id: str) -> dict[str, Any]:
        attempt = self.results.get(check_id)
        return attempt.evidence if attempt else {}

    # --- DNS -----------------------------------------------------------------------

    def make_query(
        self, qname: str | None = None, rdtype: str = "A", pad: int | None = None
    ) -> dns.message.Message:
        return dns.message.make_query(
            dns.name.from_text(qname or self.config.qname),
            dns.rdatatype.from_text(rdtype),
            use_edns=0,
            payload=1232,
            pad=pad or 0,
        )

    # --- TLS connections -----------------------------------------------------------

    def handshake(self) -> Handshake:
        """The shared handshake, made on first use (never raises: failure is data)."""
        cached = self.cache.get("handshake")
        if isinstance(cached, Handshake):
            return cached
        info = Handshake()
        self.cache["handshake"] = info
        strict_ctx = client_context(verify=True, ca_file=self.config.ca_file)
        try:
            conn = self.net.tls_connect(self.address, self.port, strict_ctx, self.sni, self.op())
            info.connection, info.context, info.verified = conn, strict_ctx, True
        except ProbeError as exc:
            if exc.kind != "verify":
                info.error = exc
                return info
            info.verify_error = str(exc)
            loose_ctx = client_context(verify=False)
            try:
                conn = self.net.tls_connect(self.address, self.port, loose_ctx, self.sni, self.op())
                info.connection, info.context = conn, loose_ctx
            except ProbeError as again:
                info.error = again
                return info
        self._connections.append(conn)
        info.chain = conn.chain()
        info.verified_chain = conn.verified_chain() if info.verified else []
        return info

    def tls(self) -> TlsConnection:
        """The shared connection; raises ProbeError when no handshake succeeded."""
        return self.handshake().require()

    def connection(self, key: str, factory: Callable[[], TlsConnection]) -> TlsConnection:
        """A named extra connection, opened once and closed when the target is done."""
        cached = self.cache.get(f"conn:{key}")
        if isinstance(cached, TlsConnection):
            return cached
        conn = factory()
        self.cache[f"conn:{key}"] = conn
        self._connections.append(conn)
        return conn

    def adopt(self, conn: TlsConnection) -> TlsConnection:
        """Close ``conn`` with the others when the target is done."""
        self._connections.append(conn)
        return conn

    def close(self) -> None:
        for conn in self._connections:
            conn.close()
        self._connections.clear()


class Check(ABC):
    """One requirement tested against one target. Subclasses set the class attributes."""

    id: ClassVar[str]
    title: ClassVar[str]
    rfc: ClassVar[str]
    level: ClassVar[Level]
    depends_on: ClassVar[tuple[str, ...]] = ()
    after: ClassVar[tuple[str, ...]] = ()
    budget: ClassVar[float] = 10.0
    """Seconds at the default ``--timeout``; scaled when ``--timeout`` is larger."""
    advice: ClassVar[str] = ""
    """What to change on the resolver when the check fails or warns: the remediation of
    its finding (DA-PROBE-004)."""
    strict_only: ClassVar[bool] = False
    """Failing it stops a strict client only: counted low in opportunistic mode."""
    online_only: ClassVar[bool] = False
    """It needs the resolver to reach the internet: run only with ``--online``."""

    def extra_wait(self, config: ProbeConfig) -> float:
        """Seconds of deliberate waiting the run's options add to ``budget`` (unscaled)."""
        return 0.0

    @abstractmethod
    def run(self, ctx: CheckContext) -> Outcome:
        """Test the target; raise ProbeError (or anything) to record an error attempt."""
