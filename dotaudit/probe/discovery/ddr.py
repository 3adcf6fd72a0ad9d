"""Discovery of Designated Resolvers (RFC 9462): ask each unencrypted resolver for
``_dns.resolver.arpa`` SVCB over port 53, read every record (RFC 9460, RFC 9461), and
connect to each designated resolver it names over the protocol it names.

Verified discovery (§4.2) needs two things of the designated resolver's certificate: a
chain to a trust anchor (``--ca`` or the system store) and the unencrypted resolver's IP
address among its subjectAltName entries. Opportunistic discovery (§4.3) may use an
unverified designation only when it has the unencrypted resolver's own IP address and
that address is private or local; the report says when that is what applies.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype

from dotaudit.model.findings import Confidence, Finding, make_finding
from dotaudit.probe.base import ProbeConfig
from dotaudit.probe.discovery import identity as ident
from dotaudit.probe.discovery.svcb import (
    DEFAULT_PORTS,
    PROTOCOLS,
    SVCB,
    Response,
    SvcbRecord,
    WireError,
    addresses_for,
    dohpath_post_path,
    dohpath_problem,
    rcode_text,
    read_svcb,
    walk,
)
from dotaudit.probe.tls_context import client_context
from dotaudit.probe.transport import Deadline, ProbeError, SecureExchange, Transport
from dotaudit.x509 import (
    BadCertificate,
    issuer_text,
    load_certificate,
    matches_ip,
    matches_name,
    san_names,
)

DDR_NAME = "_dns.resolver.arpa."
MAX_ALIAS_CHAIN = 4
"""AliasMode records followed in a row (RFC 9460 §2.4.2 asks clients to bound chains)."""
MAX_ENDPOINTS = 32
"""Designated endpoints probed per unencrypted resolver; more are listed, not probed."""
MAX_SAN_LISTED = 20

_LOCAL_NETWORKS: tuple[tuple[str, str], ...] = (
    ("10.0.0.0/8", "a private address (RFC 1918)"),
    ("172.16.0.0/12", "a private address (RFC 1918)"),
    ("192.168.0.0/16", "a private address (RFC 1918)"),
    ("169.254.0.0/16", "a link-local address (RFC 3927)"),
    ("127.0.0.0/8", "a loopback address"),
    ("fc00::/7", "a unique local address (RFC 4193)"),
    ("fe80::/10", "a link-local address (RFC 4291)"),
    ("::1/128", "a loopback address"),
)


def local_kind(address: str) -> str | None:
    """What makes ``address`` private or local in RFC 9462 §4.3's sense, or None."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    for prefix, kind in _LOCAL_NETWORKS:
        net = ipaddress.ip_network(prefix)
        if ip.version == net.version and ip in net:
            return kind
    return None


@dataclass
class Endpoint:
    """One designated resolver: a record's target over one of the protocols it names."""

    resolver: str
    """The unencrypted resolver that designated it."""
    priority: int
    target: str
    protocol: str
    """"dot", "doq" or "doh"."""
    alpn: str
    port: int
    record: str
    dohpath: str | None = None
    addresses: list[str] = field(default_factory=list)
    address_source: str = ""
    status: str = "not probed"
    """verified, opportunistic, not verified, unreachable, no address, not probed."""
    reasons: list[str] = field(default_factory=list)
    address: str | None = None
    """The address it was probed at."""
    verification: dict[str, Any] = field(default_factory=dict)
    opportunistic: dict[str, Any] = field(default_factory=dict)
    exchange: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.target.rstrip('.')} ({self.protocol.upper()})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "resolver": self.resolver,
            "priority": self.priority,
            "target": self.target,
            "protocol": self.protocol,
            "alpn": self.alpn,
            "port": self.port,
            "dohpath": self.dohpath,
            "addresses": self.addresses,
            "address_source": self.address_source,
            "address": self.address,
            "status": self.status,
            "verified": self.status == "verified",
            "reasons": self.reasons,
            "verification": self.verification,
            "opportunistic": self.opportunistic,
            "exchange": self.exchange,
            "record": self.record,
        }


@dataclass
class DdrResult:
    """DDR of one unencrypted resolver."""

    resolver: str
    status: str = "not asked"
    """designations, none (NODATA or no usable record), unreachable, error."""
    detail: str = ""
    rcode: str | None = None
    over: str = "udp"
    records: list[dict[str, Any]] = field(default_factory=list)
    endpoints: list[Endpoint] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    identity: ident.Identity | None = None
    """What the resolver tells about itself on port 53 (to recognise it elsewhere)."""


# -- asking ----------------------------------------------------------------------------


def _ask_wire(net: Transport, address: str, wire: bytes, deadline: Deadline) -> tuple[bytes, str]:
    """The raw response over UDP, again over TCP when it came back truncated."""
    data, _ = net.udp_dns_wire(address, 53, wire, deadline)
    try:
        truncated = walk(data).truncated
    except WireError:
        truncated = False
    if truncated:
        data, _ = net.tcp_dns_wire(address, 53, wire, deadline)
        return data, "tcp"
    return data, "udp"


def _query(name: str, rdtype: dns.rdatatype.RdataType) -> bytes:
    query = dns.message.make_query(name, rdtype, use_edns=0, payload=1232)
    return query.to_wire()


def _svcb_records(
    net: Transport, address: str, name: str, deadline: Deadline
) -> tuple[Response, bytes, list[SvcbRecord], str]:
    wire, over = _ask_wire(net, address, _query(name, SVCB), deadline)
    response = walk(wire)
    records = [read_svcb(wire, r) for r in response.answers if r.rdtype == SVCB and r.owner == name]
    return response, wire, records, over


# -- judging records -------------------------------------------------------------------


def _record_row(
    resolver: str, record: SvcbRecord, status: str, problems: list[str]
) -> dict[str, Any]:
    return {"resolver": resolver, **record.to_dict(), "status": status, "problems": problems}


def _service_problems(record: SvcbRecord) -> list[str]:
    """Why a ServiceMode record designates nothing usable (malformed for DDR)."""
    problems: list[str] = []
    if record.target == ".":
        problems.append(
            "TargetName is '.', which a _dns.resolver.arpa record MUST NOT use (RFC 9462 §4): "
            "it names no resolver to authenticate"
        )
    alpn = record.params.get("alpn") or []
    if not alpn:
        problems.append("no alpn: the record names no protocol (RFC 9461 §4.1)")
    if record.params.get("port") == 0:
        problems.append("port 0 is no port")
    if any(PROTOCOLS.get(a) == "doh" for a in alpn):
        template = record.params.get("dohpath")
        if template is None:
            problems.append("alpn names DoH but the record has no dohpath (RFC 9461 §5)")
        else:
            problem = dohpath_problem(str(template))
            if problem:
                problems.append(problem + " (RFC 9461 §5)")
    return problems


def _endpoints(resolver: str, record: SvcbRecord) -> tuple[list[Endpoint], list[str]]:
    """One endpoint per protocol the record names; the ALPN identifiers not spoken."""
    out: list[Endpoint] = []
    unknown: list[str] = []
    seen: set[str] = set()
    for alpn in record.params.get("alpn") or []:
        protocol = PROTOCOLS.get(alpn)
        if protocol is None:
            unknown.append(alpn)
            continue
        if protocol in seen:
            continue
        seen.add(protocol)
        port = int(record.params.get("port") or DEFAULT_PORTS[protocol])
        dohpath = record.params.get("dohpath") if protocol == "doh" else None
        out.append(
            Endpoint(
                resolver,
                int(record.priority or 0),
                str(record.target),
                protocol,
                alpn,
                port,
                record.text,
                dohpath,
            )
        )
    return out, unknown


def _malformed(result: DdrResult, record: SvcbRecord, why: list[str]) -> None:
    result.records.append(_record_row(result.resolver, record, "malformed", why))
    result.findings.append(
        make_finding(
            "DA-DDR-001",
            dedup_key=f"{result.resolver}|{record.text}",
            server=result.resolver,
            evidence={"resolver": result.resolver, "record": record.text, "problems": why},
        )
    )


def _read_rrset(
    result: DdrResult, records: list[SvcbRecord], response: Response, wire: bytes
) -> list[SvcbRecord]:
    """Judge one SVCB RRset; returns the AliasMode record to follow, if any (as a list)."""
    aliases = [r for r in records if r.malformed is None and r.priority == 0]
    for record in sorted(records, key=lambda r: (r.priority is None, r.priority or 0)):
        if record.malformed is not None:
            _malformed(result, record, [f"the RDATA does not parse: {record.malformed}"])
            continue
        if record.priority == 0:
            continue
        if aliases:
            note = "ignored: the RRset also holds an AliasMode record (RFC 9460 §2.4.2)"
            result.records.append(_record_row(result.resolver, record, "ignored", [note]))
            continue
        problems = _service_problems(record)
        if problems:
            _malformed(result, record, problems)
            continue
        if record.mandatory_unknown:
            why = (
                f"marks {', '.join(record.mandatory_unknown)} mandatory, which dotaudit does "
                "not understand: a client MUST NOT use it (RFC 9462 §4, RFC 9460 §8)"
            )
            result.records.append(_record_row(result.resolver, record, "ignored", [why]))
            continue
        endpoints, unknown = _endpoints(result.resolver, record)
        for endpoint in endpoints:
            _known_addresses(endpoint, record, response, wire)
        notes = [f"ALPN {', '.join(unknown)} not spoken by dotaudit"] if unknown else []
        status = "designation" if endpoints else "ignored"
        result.records.append(_record_row(result.resolver, record, status, notes))
        result.endpoints += endpoints
    for alias in aliases[:1]:
        result.records.append(_record_row(result.resolver, alias, "alias", []))
    return aliases[:1]


# -- addresses --------------------------------------------------------------------------


def _known_addresses(
    endpoint: Endpoint, record: SvcbRecord, response: Response, wire: bytes
) -> None:
    """The addresses the response itself gives: the record's hints, else the additional
    section (RFC 9462 §4 asks resolvers to put the target's A and AAAA there)."""
    hints = [*record.params.get("ipv4hint", []), *record.params.get("ipv6hint", [])]
    if hints:
        endpoint.addresses, endpoint.address_source = hints, "ipv4hint/ipv6hint"
        return
    extra = addresses_for(wire, response.additional, endpoint.target)
    if extra:
        endpoint.addresses, endpoint.address_source = extra, "additional section"


def _resolve_target(net: Transport, resolver: str, endpoint: Endpoint, deadline: Deadline) -> None:
    """Addresses for a target the response gave none for: A and AAAA queries to the same
    unencrypted resolver (never the system's own lookup)."""
    found: list[str] = []
    failures: list[str] = []
    for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        try:
            answer_wire, _ = _ask_wire(net, resolver, _query(endpoint.target, rdtype), deadline)
            answer = walk(answer_wire)
        except (ProbeError, WireError) as exc:
            failures.append(f"{dns.rdatatype.to_text(rdtype)}: {exc}")
            continue
        if answer.rcode != 0:
            failures.append(f"{dns.rdatatype.to_text(rdtype)}: {rcode_text(answer.rcode)}")
        found += [
            a for a in addresses_for(answer_wire, answer.answers, endpoint.target) if a not in found
        ]
    endpoint.addresses = found
    endpoint.address_source = f"A/AAAA queries to {resolver}"
    if not found:
        endpoint.status = "no address"
        endpoint.reasons.append(
            f"{endpoint.target} does not resolve at {resolver} "
            f"({'; '.join(failures) or 'no A or AAAA record'}) and the record has no address hints"
        )


# -- probing one endpoint ------------------------------------------------------------------


def _exchange(
    net: Transport, endpoint: Endpoint, address: str, config: ProbeConfig, strict: bool
) -> SecureExchange:
    """One query to the designated resolver; its certificate chain comes back with it."""
    deadline = Deadline(config.timeout * 2)
    server_name = endpoint.target.rstrip(".")
    query = ident.nsid_query(config.qname)
    if endpoint.protocol == "doh":
        query.id = 0  # RFC 8484 §4.1
        context = client_context(verify=strict, ca_file=config.ca_file, alpn=("h2",))
        path = dohpath_post_path(endpoint.dohpath or "/dns-query")
        return net.doh_exchange(
            address, endpoint.port, query.to_wire(), deadline, server_name, context, path
        )
    if endpoint.protocol == "doq":
        query.id = 0  # RFC 9250 §4.2.1
        verify: bool | str = (config.ca_file or True) if strict else False
        return net.doq_exchange(
            address, endpoint.port, query.to_wire(), deadline, server_name, verify
        )
    context = client_context(verify=strict, ca_file=config.ca_file)
    conn = net.tls_connect(address, endpoint.port, context, server_name, deadline)
    try:
        reply, query_ms = conn.query(query, deadline)
        chain = conn.chain()
        return SecureExchange(
            reply.to_wire(),
            query_ms,
            conn.timings.get("handshake_ms"),
            conn.alpn,
            chain,
            conn.version,
        )
    finally:
        conn.close()


REFUSED_KINDS = ("verify", "alert", "protocol", "closed")
"""How a refused chain surfaces: a DoT or DoH client sees the verification error, a DoQ
client (aioquic) only an alert or the connection ending."""


def probe_endpoint(net: Transport, endpoint: Endpoint, config: ProbeConfig) -> None:
    """Connect to the designated resolver, verify it (RFC 9462 §4.2) and judge whether
    opportunistic discovery (§4.3) applies; fills the endpoint's status and evidence."""
    if not endpoint.addresses:
        return
    same = [a for a in endpoint.addresses if a == endpoint.resolver]
    address = same[0] if same else endpoint.addresses[0]
    endpoint.address = address
    chain_error: str | None = None
    try:
        exchange = _exchange(net, endpoint, address, config, strict=True)
    except ProbeError as exc:
        if exc.kind not in REFUSED_KINDS:
            endpoint.status = "unreachable"
            endpoint.reasons.append(str(exc))
            endpoint.exchange = {"error_kind": exc.kind, "error": str(exc)}
            return
        chain_error = str(exc)
        try:
            exchange = _exchange(net, endpoint, address, config, strict=False)
        except ProbeError as again:
            endpoint.status = "unreachable"
            endpoint.reasons.append(f"strict: {exc}; without verification: {again}")
            endpoint.exchange = {"error_kind": again.kind, "error": str(again)}
            return
    endpoint.exchange = {
        "alpn": exchange.alpn,
        "tls_version": exchange.tls_version,
        "handshake_ms": exchange.handshake_ms,
        "query_ms": exchange.query_ms,
        "http_status": exchange.http_status,
        "answered": bool(exchange.wire),
    }
    _verify(endpoint, exchange.chain, chain_error)
    _judge(endpoint)


def _verify(endpoint: Endpoint, chain: list[bytes], chain_error: str | None) -> None:
    checks: dict[str, Any] = {"chain_verified": chain_error is None, "chain_error": chain_error}
    endpoint.verification = checks
    if not chain:
        checks["certificate"] = "none seen"
        return
    try:
        leaf = load_certificate(chain[0])
    except BadCertificate as exc:
        checks["certificate"] = f"unreadable ({exc})"
        return
    sans = san_names(leaf)
    checks["issuer"] = issuer_text(leaf)
    checks["san_ips"] = list(sans.ips)[:MAX_SAN_LISTED]
    checks["san_dns"] = list(sans.dns)[:MAX_SAN_LISTED]
    checks["ip_in_san"] = matches_ip(sans, endpoint.resolver.split("%", 1)[0])
    checks["name_matches"] = matches_name(sans, endpoint.target.rstrip("."))


def _judge(endpoint: Endpoint) -> None:
    checks = endpoint.verification
    unencrypted = endpoint.resolver
    reasons: list[str] = []
    if not checks.get("chain_verified"):
        reasons.append(
            f"the certificate does not chain to a trust anchor ({checks.get('chain_error')})"
        )
    if checks.get("ip_in_san") is False:
        reasons.append(
            f"the certificate does not list {unencrypted} among its subjectAltName IP addresses"
        )
    elif "ip_in_san" not in checks:
        reasons.append(f"no readable certificate ({checks.get('certificate', 'none seen')})")
    verified = not reasons
    kind = local_kind(unencrypted)
    if endpoint.address != unencrypted:
        opportunistic = {
            "applies": False,
            "reason": f"the designated address {endpoint.address} "
            f"differs from the unencrypted resolver's {unencrypted} (RFC 9462 §4.3)",
        }
    elif kind is None:
        opportunistic = {
            "applies": False,
            "reason": f"{unencrypted} is a public address; "
            "opportunistic discovery is for private or local addresses (RFC 9462 §4.3)",
        }
    else:
        opportunistic = {
            "applies": True,
            "reason": f"{unencrypted} is {kind} and the designated "
            "resolver has the same address (RFC 9462 §4.3)",
        }
    endpoint.opportunistic = opportunistic
    if verified:
        endpoint.status = "verified"
        endpoint.reasons.append(
            f"the certificate chains to a trust anchor and lists {unencrypted} (RFC 9462 §4.2)"
        )
        return
    endpoint.reasons += reasons
    if opportunistic["applies"]:
        endpoint.status = "opportunistic"
        endpoint.reasons.append(
            "not verified, but usable by opportunistic discovery: " + str(opportunistic["reason"])
        )
    else:
        endpoint.status = "not verified"


# -- one resolver ----------------------------------------------------------------------------


def discover_designations(net: Transport, resolver: str, config: ProbeConfig) -> DdrResult:
    """Ask ``resolver`` for its designated resolvers and probe each (RFC 9462 §4)."""
    result = DdrResult(resolver)
    deadline = Deadline(config.timeout)
    try:
        response, wire, records, result.over = _svcb_records(net, resolver, DDR_NAME, deadline)
    except ProbeError as exc:
        result.status = (
            "unreachable" if exc.kind in ("timeout", "icmp", "refused", "policy") else "error"
        )
        result.detail = str(exc)
        return result
    except WireError as exc:
        result.status, result.detail = "error", f"the response does not parse: {exc}"
        return result
    result.rcode = rcode_text(response.rcode)
    if response.rcode != 0:
        result.status = "none"
        result.detail = f"answered {result.rcode} for {DDR_NAME} SVCB"
        return result
    chain: list[str] = [DDR_NAME]
    current, current_response, current_wire = records, response, wire
    while True:
        aliases = _read_rrset(result, current, current_response, current_wire)
        if not aliases:
            break
        target = str(aliases[0].target)
        if target == "." or target in chain or len(chain) > MAX_ALIAS_CHAIN:
            why = (
                "AliasMode to '.': the service is not available (RFC 9460 §2.5.1)"
                if target == "."
                else f"AliasMode chain {' -> '.join([*chain, target])} "
                "loops or is too long; not followed"
            )
            result.records[-1]["problems"] = [why]
            break
        chain.append(target)
        try:
            current_response, current_wire, current, _ = _svcb_records(
                net, resolver, target, Deadline(config.timeout)
            )
        except (ProbeError, WireError) as exc:
            result.records[-1]["problems"] = [f"following the alias to {target}: {exc}"]
            break
    result.endpoints.sort(key=lambda e: e.priority)  # stable: record order within a priority
    result.status = "designations" if result.endpoints else "none"
    if not result.endpoints:
        result.detail = (
            "no usable designation" if result.records else "NODATA: no designated resolver"
        )
    for endpoint in result.endpoints[:MAX_ENDPOINTS]:
        if not endpoint.addresses:
            _resolve_target(net, resolver, endpoint, Deadline(config.timeout * 2))
        if endpoint.status == "no address":
            result.findings.append(
                make_finding(
                    "DA-DDR-002",
                    dedup_key=f"{resolver}|{endpoint.target}",
                    server=resolver,
                    evidence={
                        "resolver": resolver,
                        "target": endpoint.target,
                        "record": endpoint.record,
                        "reasons": endpoint.reasons,
                    },
                )
            )
            continue
        probe_endpoint(net, endpoint, config)
        if endpoint.status in ("not verified", "opportunistic"):
            result.findings.append(
                make_finding(
                    "DA-DDR-003",
                    dedup_key=f"{resolver}|{endpoint.label}|{endpoint.address}",
                    server=f"{endpoint.address}:{endpoint.port}",
                    confidence=Confidence.HIGH,
                    evidence={
                        "resolver": resolver,
                        "designated": endpoint.label,
                        "reasons": endpoint.reasons,
                        "opportunistic": endpoint.opportunistic.get("reason"),
                    },
                )
            )
    for endpoint in result.endpoints[MAX_ENDPOINTS:]:
        endpoint.reasons.append(f"not probed: more than {MAX_ENDPOINTS} designations")
    return result


def ask_identity(net: Transport, resolver: str, config: ProbeConfig) -> ident.Identity | None:
    """The resolver's identity over UDP 53; None when it does not answer."""

    def ask(query: dns.message.Message) -> dns.message.Message:
        return net.udp_dns(resolver, 53, query, Deadline(config.timeout))[0]

    try:
        return ident.ask_identity(ask, config.qname)
    except ProbeError:
        return None
