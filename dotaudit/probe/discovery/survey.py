"""The survey: what this network does to encrypted DNS, resolver by resolver.

Each resolver gets four small tests, run at the same time with a budget each, and at
most three connections between them (one TLS for DoT, one TLS for DoH, one QUIC for
DoQ; port 53 is a few UDP datagrams, and raw SYNs to compare TTLs are half-open probes
sent as root only after a reset):

- DoT on 853: open, dropped, reset (injected when the RST's TTL differs from the
  server's own packets), ICMP, cut after the ClientHello, or intercepted (a certificate
  that does not chain to a trust anchor or does not name the resolver);
- DoH on 443 to its host name: reachable, blocked (reset or silence after the
  ClientHello: SNI filtering), or intercepted;
- DoQ on UDP 853: reachable or dropped;
- plaintext 53: answered by the resolver itself, or by someone else (NSID, ``id.server``
  or ``hostname.bind`` differ from what the encrypted path tells, or equal the system
  resolver's), or answered although every encrypted port of the resolver is silent.

All resolvers run concurrently, so a network that drops everything costs about one
timeout, not one per resolver and test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import dns.message
import dns.rcode

from dotaudit.probe.base import ProbeConfig
from dotaudit.probe.discovery import identity as ident
from dotaudit.probe.tls_context import client_context
from dotaudit.probe.transport import Deadline, ProbeError, SecureExchange, Transport, can_send_raw
from dotaudit.x509 import (
    BadCertificate,
    issuer_text,
    load_certificate,
    matches_ip,
    matches_name,
    san_names,
)

STATUSES = (
    "pass",
    "blocked",
    "intercepted",
    "hijacked",
    "unverified",
    "failed",
    "not offered",
    "not tested",
)
"""What a cell of the resolver x transport matrix can say."""
MAX_CONNECTIONS = 3
"""Connections (TCP connects plus QUIC handshakes) one resolver's survey opens at most:
one per encrypted transport. Port 53 costs datagrams, a reset's TTL check raw SYNs."""
MAX_CONCURRENCY = 64
TTL_PORTS = (53, 443)
"""Ports whose SYN-ACK or RST shows the server's own TTL (as the rst-injection check)."""
TRANSPORTS = ("dot", "doh", "doq", "plain")

_RAW_LOCK = threading.Lock()
"""scapy's configuration is global: raw probes go one at a time."""


@dataclass(frozen=True)
class SurveyTarget:
    """One resolver to survey and the names to reach it by."""

    label: str
    address: str
    source: str
    group: str
    """"public" (a known-resolver list) or "designated" (DDR or DNR)."""
    dot_name: str | None = None
    doh_host: str | None = None
    doh_path: str = "/dns-query"
    doq_name: str | None = None
    dot_port: int = 853
    doh_port: int = 443
    doq_port: int = 853
    system: bool = False
    """One of the system's own resolvers (then port 53 answering is no redirection)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "address": self.address,
            "source": self.source,
            "group": self.group,
            "dot_name": self.dot_name,
            "doh_host": self.doh_host,
            "doh_path": self.doh_path,
            "doq_name": self.doq_name,
            "dot_port": self.dot_port,
            "doh_port": self.doh_port,
            "doq_port": self.doq_port,
        }


@dataclass
class Outcome:
    """One cell: a status from :data:`STATUSES`, how (the mechanism) and why."""

    status: str
    how: str = ""
    reason: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    identity: ident.Identity | None = None
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = {
            "status": self.status,
            "how": self.how,
            "reason": self.reason,
            "evidence": self.evidence,
            "elapsed_s": round(self.elapsed_s, 3),
        }
        if self.identity is not None:
            out["identity"] = self.identity.to_dict()
        return out


@dataclass
class SurveyResult:
    target: SurveyTarget
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    connections: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        stats = self.connections
        return {
            **self.target.to_dict(),
            **{name: self.outcomes[name].to_dict() for name in TRANSPORTS if name in self.outcomes},
            "connections": {
                **stats,
                "opened": stats.get("tcp_connects", 0) + stats.get("quic_handshakes", 0),
            },
            "elapsed_s": round(self.elapsed_s, 3),
        }


# -- DoT -----------------------------------------------------------------------------------

_BLOCK_WORDS = {
    ("connect", "timeout"): ("dropped", "nothing answered the SYN"),
    ("connect", "refused"): ("reset", "the SYN was answered with a RST"),
    ("connect", "icmp"): ("icmp", "an ICMP unreachable came back"),
    ("handshake", "reset"): (
        "reset after ClientHello",
        "the connection was reset right after the ClientHello",
    ),
    ("handshake", "closed"): (
        "closed after ClientHello",
        "the connection was closed right after the ClientHello",
    ),
    ("handshake", "timeout"): (
        "stalled after ClientHello",
        "the TLS handshake got no answer after the ClientHello",
    ),
    ("exchange", "reset"): (
        "reset after handshake",
        "the connection was reset after the TLS handshake",
    ),
}


def _failure(exc: ProbeError, what: str) -> Outcome:
    """A failed connection as a cell: blocked (and how), intercepted, or failed."""
    evidence = {"error_kind": exc.kind, "phase": exc.phase, "error": str(exc)}
    if exc.errno_name:
        evidence["errno"] = exc.errno_name
    if exc.kind == "policy":
        return Outcome("not tested", "outside allowed networks", str(exc), evidence)
    if exc.kind == "verify":
        return Outcome("intercepted", "certificate does not chain", f"{what}: {exc}", evidence)
    words = _BLOCK_WORDS.get((exc.phase, exc.kind))
    if words is None and exc.kind in ("timeout", "icmp", "refused", "reset"):
        words = _BLOCK_WORDS.get(("connect", exc.kind))
    if words is not None:
        return Outcome("blocked", words[0], f"{what}: {words[1]}", evidence)
    return Outcome("failed", exc.kind, f"{what}: {exc}", evidence)


def _certificate_names(
    chain: list[bytes], name: str | None, address: str
) -> tuple[bool, dict[str, Any]]:
    """(whether the leaf names the resolver, what it names)."""
    if not chain:
        return False, {"certificate": "none seen"}
    try:
        leaf = load_certificate(chain[0])
    except BadCertificate as exc:
        return False, {"certificate": f"unreadable ({exc})"}
    sans = san_names(leaf)
    ok = matches_name(sans, name) if name else matches_ip(sans, address)
    return ok, {
        "issuer": issuer_text(leaf),
        "san_dns": list(sans.dns)[:10],
        "san_ips": list(sans.ips)[:10],
        "names_resolver": ok,
    }


def _ttl_evidence(net: Transport, address: str, port: int, timeout: float) -> dict[str, Any]:
    """Raw SYNs to the DoT port and the reference ports: the RST's TTL against the
    server's own (RFC 8310 §5 downgrade by injected resets)."""
    if not can_send_raw():
        return {
            "method": "connect",
            "note": "raw SYN probes need root; the reset is not told apart from the server's own",
        }
    replies: dict[str, Any] = {}
    with _RAW_LOCK:
        for probe_port in (port, *TTL_PORTS):
            try:
                replies[str(probe_port)] = net.raw_syn(address, probe_port, timeout).to_dict()
            except ProbeError as exc:
                replies[str(probe_port)] = {"kind": "error", "error": str(exc)}
    main = replies[str(port)]
    refs = {
        p: r["ttl"]
        for p, r in replies.items()
        if p != str(port) and r.get("kind") in ("syn-ack", "rst") and r.get("ttl") is not None
    }
    evidence: dict[str, Any] = {"method": "raw-syn", "replies": replies, "reference_ttls": refs}
    if main.get("kind") == "rst" and refs and main.get("ttl") not in refs.values():
        evidence["injected"] = True
        evidence["rst_ttl"] = main.get("ttl")
    elif main.get("kind") == "rst" and refs:
        evidence["injected"] = False
    return evidence


def survey_dot(net: Transport, target: SurveyTarget, config: ProbeConfig) -> Outcome:
    if target.dot_name is None:
        return Outcome("not offered", reason="no DoT name for it in the list")
    deadline = Deadline(config.timeout * 2)
    context = client_context(verify=True, ca_file=config.ca_file)
    what = f"DoT to {target.address}:{target.dot_port} as {target.dot_name}"
    try:
        conn = net.tls_connect(
            target.address, target.dot_port, context, target.dot_name, deadline.sub(config.timeout)
        )
    except ProbeError as exc:
        outcome = _failure(exc, what)
        if outcome.how == "reset":
            ttl = _ttl_evidence(net, target.address, target.dot_port, min(config.timeout, 2.0))
            outcome.evidence["ttl"] = ttl
            if ttl.get("injected"):
                refs = ", ".join(f"{t} on {p}" for p, t in ttl["reference_ttls"].items())
                outcome.how = "RST injection"
                outcome.reason = (
                    f"{what}: the RST has TTL {ttl['rst_ttl']} while the server's "
                    f"own packets arrive with {refs}: injected on the path"
                )
        return outcome
    try:
        names, cert = _certificate_names(conn.chain(), target.dot_name, target.address)
        evidence: dict[str, Any] = {
            "tls_version": conn.version,
            "alpn": conn.alpn,
            **conn.timings,
            "certificate": cert,
        }
        if not names:
            return Outcome(
                "intercepted",
                "certificate names another",
                f"{what}: the certificate chains but does not name {target.dot_name}",
                evidence,
            )

        def ask(query: dns.message.Message) -> dns.message.Message:
            return conn.query(query, deadline.sub(config.timeout))[0]

        try:
            found = ident.ask_identity(ask, config.qname)
        except ProbeError as exc:
            return Outcome(
                "failed", "no DNS answer", f"{what}: handshake done, but {exc}", evidence
            )
        return Outcome("pass", "open", f"{what}: answered", evidence, found)
    finally:
        conn.close()


# -- DoH and DoQ -----------------------------------------------------------------------------


def _secure_outcome(exchange: SecureExchange, what: str, name: str | None, address: str) -> Outcome:
    names, cert = _certificate_names(exchange.chain, name, address)
    evidence: dict[str, Any] = {
        "alpn": exchange.alpn,
        "handshake_ms": exchange.handshake_ms,
        "query_ms": exchange.query_ms,
        "certificate": cert,
    }
    if exchange.http_status is not None:
        evidence["http_status"] = exchange.http_status
    if not names:
        return Outcome(
            "intercepted",
            "certificate names another",
            f"{what}: the certificate chains but does not name {name or address}",
            evidence,
        )
    if exchange.http_status is not None and not 200 <= exchange.http_status < 300:
        return Outcome(
            "failed",
            f"HTTP {exchange.http_status}",
            f"{what}: HTTP {exchange.http_status} to a DoH POST",
            evidence,
        )
    try:
        reply = dns.message.from_wire(exchange.wire, ignore_trailing=True)
    except Exception as exc:  # a hostile body must become a result, not a crash
        return Outcome("failed", "not DNS", f"{what}: the answer is not DNS ({exc})", evidence)
    return Outcome(
        "pass",
        "open",
        f"{what}: answered {dns.rcode.to_text(reply.rcode())}",
        evidence,
        ident.from_reply(reply),
    )


def survey_doh(net: Transport, target: SurveyTarget, config: ProbeConfig) -> Outcome:
    if target.doh_host is None:
        return Outcome("not offered", reason="no DoH host for this address in the list")
    query = ident.nsid_query(config.qname)
    query.id = 0  # RFC 8484 §4.1
    context = client_context(verify=True, ca_file=config.ca_file, alpn=("h2",))
    what = f"DoH to {target.address}:{target.doh_port} as {target.doh_host}"
    try:
        exchange = net.doh_exchange(
            target.address,
            target.doh_port,
            query.to_wire(),
            Deadline(config.timeout),
            target.doh_host,
            context,
            target.doh_path,
        )
    except ProbeError as exc:
        outcome = _failure(exc, what)
        if outcome.status == "blocked" and exc.phase == "handshake":
            outcome.how = "SNI filtering"
            outcome.reason += f" naming {target.doh_host}: SNI-based blocking"
        return outcome
    return _secure_outcome(exchange, what, target.doh_host, target.address)


def survey_doq(net: Transport, target: SurveyTarget, config: ProbeConfig) -> Outcome:
    if target.doq_name is None:
        return Outcome("not offered", reason="no DoQ name for it in the list")
    query = ident.nsid_query(config.qname)
    query.id = 0  # RFC 9250 §4.2.1
    what = f"DoQ to {target.address}:{target.doq_port} as {target.doq_name}"
    try:
        exchange = net.doq_exchange(
            target.address,
            target.doq_port,
            query.to_wire(),
            Deadline(config.timeout),
            target.doq_name,
            config.ca_file or True,
        )
    except ProbeError as exc:
        outcome = _failure(exc, what)
        if exc.kind == "timeout":
            outcome.status, outcome.how = "blocked", "dropped"
            outcome.reason = f"{what}: no QUIC handshake answer (UDP dropped)"
        elif exc.kind == "refused":
            outcome.status, outcome.how = "blocked", "icmp"
            outcome.reason = f"{what}: ICMP port unreachable"
        return outcome
    return _secure_outcome(exchange, what, target.doq_name, target.address)


# -- plaintext 53 ------------------------------------------------------------------------------


def survey_plain(net: Transport, target: SurveyTarget, config: ProbeConfig) -> Outcome:
    deadline = Deadline(config.timeout * 2)

    def ask(query: dns.message.Message) -> dns.message.Message:
        return net.udp_dns(target.address, 53, query, deadline.sub(config.timeout))[0]

    try:
        found = ident.ask_identity(ask, config.qname)
    except ProbeError as exc:
        outcome = _failure(exc, f"port 53 of {target.address}")
        if outcome.status == "blocked" and outcome.how == "dropped":
            # UDP: there is no SYN to go unanswered, only the queries.
            outcome.how = "no answer"
            outcome.reason = f"port 53 of {target.address}: no answer over UDP ({exc})"
        return outcome
    return Outcome(
        "answered",
        "answered",
        f"port 53 of {target.address} answered",
        {"told": found.told()},
        found,
    )


ENCRYPTED_PATHS = (("dot", "DoT"), ("doh", "DoH"), ("doq", "DoQ"))


def judge_plain(result: SurveyResult, system: dict[str, ident.Identity]) -> None:
    """Compare port 53's identity with the encrypted paths' and the system resolvers'."""
    plain = result.outcomes.get("plain")
    if plain is None or plain.status != "answered" or plain.identity is None:
        return
    target = result.target
    for key, name in ENCRYPTED_PATHS:
        outcome = result.outcomes.get(key)
        if outcome is None or outcome.status != "pass" or outcome.identity is None:
            continue
        diffs = ident.differences(outcome.identity, plain.identity, name)
        plain.evidence["compared_with"] = name
        if diffs:
            plain.status, plain.how = "hijacked", "identity differs"
            plain.evidence["differences"] = diffs
            redirect = _matching_system(plain.identity, system, target.address)
            if redirect:
                plain.evidence["redirected_to"] = redirect
            plain.reason = f"port 53 of {target.address} is answered by someone else: " + "; ".join(
                diffs
            )
            return
        if ident.same_identity(outcome.identity, plain.identity):
            plain.status, plain.how = "pass", "same resolver"
            plain.reason = (
                f"port 53 of {target.address} tells the same identity as {name} "
                f"({', '.join(sorted(plain.identity.told()))})"
            )
            return
    redirect = _matching_system(plain.identity, system, target.address)
    if redirect and not target.system:
        plain.status, plain.how = "hijacked", "answered by the system resolver"
        plain.evidence["redirected_to"] = redirect
        plain.reason = (
            f"port 53 of {target.address} answers with the identity of the system "
            f"resolver {redirect}"
        )
        return
    silent = [
        name
        for key, name in ENCRYPTED_PATHS
        if result.outcomes.get(key, Outcome("not offered")).how == "dropped"
    ]
    offered = [
        key
        for key, _ in ENCRYPTED_PATHS
        if result.outcomes.get(key, Outcome("not offered")).status != "not offered"
    ]
    if offered and len(silent) == len(offered):
        plain.status, plain.how = "unverified", "answered while unreachable"
        plain.reason = (
            f"port 53 of {target.address} answers although {', '.join(silent)} "
            "get no answer at all: possibly a middlebox answering in its place"
        )
        return
    plain.status = "unverified"
    plain.how = "not compared"
    plain.reason = (
        f"port 53 of {target.address} answered; no encrypted path told an identity "
        "to compare it with"
    )


def _matching_system(
    found: ident.Identity, system: dict[str, ident.Identity], address: str
) -> str | None:
    for resolver, theirs in system.items():
        if resolver != address and ident.same_identity(found, theirs):
            return resolver
    return None


# -- running ---------------------------------------------------------------------------------

Tester = Callable[[Transport, SurveyTarget, ProbeConfig], Outcome]
TESTERS: dict[str, Tester] = {
    "dot": survey_dot,
    "doh": survey_doh,
    "doq": survey_doq,
    "plain": survey_plain,
}


def _timed(tester: Tester, net: Transport, target: SurveyTarget, config: ProbeConfig) -> Outcome:
    start = time.monotonic()
    try:
        outcome = tester(net, target, config)
    except ProbeError as exc:
        outcome = _failure(exc, target.address)
    except Exception as exc:  # a bug or hostile input in one test must not end the survey
        outcome = Outcome(
            "failed", "internal error", f"internal error: {type(exc).__name__}: {exc}"
        )
    outcome.elapsed_s = time.monotonic() - start
    return outcome


def run_survey(
    targets: list[SurveyTarget],
    config: ProbeConfig,
    system: dict[str, ident.Identity] | None = None,
    concurrency: int = MAX_CONCURRENCY,
    transport: Callable[[], Transport] = Transport,
) -> list[SurveyResult]:
    """Survey every target, all at once (each of its four tests on its own thread)."""
    results = [SurveyResult(t) for t in targets]
    nets = [transport() for _ in targets]
    workers = max(1, min(concurrency, MAX_CONCURRENCY, len(targets) * len(TESTERS)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="survey") as pool:
        futures = {
            (index, name): pool.submit(_timed, tester, nets[index], target, config)
            for index, target in enumerate(targets)
            for name, tester in TESTERS.items()
        }
        for (index, name), future in futures.items():
            results[index].outcomes[name] = future.result()
    for index, result in enumerate(results):
        result.connections = nets[index].stats.to_dict()
        result.elapsed_s = (
            max(o.elapsed_s for o in result.outcomes.values()) if result.outcomes else 0.0
        )
        judge_plain(result, system or {})
    return results
