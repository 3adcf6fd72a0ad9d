"""The checks, in run order: a check comes after every check it depends on or reads.

Adding a check is one file under ``probe/checks/`` plus one line here.
"""

from __future__ import annotations

from collections.abc import Iterable

from dotaudit.probe.base import Check
from dotaudit.probe.checks.blocked_port import BlockedPort
from dotaudit.probe.checks.cert_chain import CertChain
from dotaudit.probe.checks.cert_expiry import CertExpiry
from dotaudit.probe.checks.cert_name import CertName
from dotaudit.probe.checks.cert_pin import CertPin
from dotaudit.probe.checks.cert_quality import CertQuality
from dotaudit.probe.checks.cleartext_on_853 import CleartextOn853
from dotaudit.probe.checks.dns_answer import DnsAnswer
from dotaudit.probe.checks.dnssec import Dnssec
from dotaudit.probe.checks.doh import Doh
from dotaudit.probe.checks.doq import Doq
from dotaudit.probe.checks.hijack_53 import Hijack53
from dotaudit.probe.checks.interception import Interception
from dotaudit.probe.checks.keepalive import Keepalive
from dotaudit.probe.checks.latency import Latency
from dotaudit.probe.checks.padding_response import PaddingResponse
from dotaudit.probe.checks.padding_unsolicited import PaddingUnsolicited
from dotaudit.probe.checks.pipelining import Pipelining
from dotaudit.probe.checks.qname_min import QnameMin
from dotaudit.probe.checks.reach_53 import Reach53
from dotaudit.probe.checks.reach_853 import Reach853
from dotaudit.probe.checks.reuse import Reuse
from dotaudit.probe.checks.rst_injection import RstInjection
from dotaudit.probe.checks.tls_resumption import TlsResumption
from dotaudit.probe.checks.tls_versions import TlsVersions

CHECKS: tuple[Check, ...] = (
    Reach853(),
    Reach53(),
    RstInjection(),
    BlockedPort(),
    TlsVersions(),
    CertChain(),
    CertName(),
    CertPin(),
    CertExpiry(),
    CertQuality(),
    Interception(),
    CleartextOn853(),
    TlsResumption(),
    # DNS-level checks: they query over the handshake the TLS checks above made
    DnsAnswer(),
    PaddingResponse(),
    PaddingUnsolicited(),
    Pipelining(),
    Reuse(),
    Latency(),
    Hijack53(),
    Doh(),
    Doq(),
    Dnssec(),
    QnameMin(),
    Keepalive(),
)

BY_ID: dict[str, Check] = {check.id: check for check in CHECKS}


class UnknownCheckError(ValueError):
    pass


def with_dependencies(ids: Iterable[str] | None) -> list[Check]:
    """The checks named in ``ids`` and everything they depend on, in registry order."""
    if ids is None:
        return list(CHECKS)
    wanted: set[str] = set()
    pending = list(ids)
    while pending:
        check_id = pending.pop()
        if check_id in wanted:
            continue
        check = BY_ID.get(check_id)
        if check is None:
            known = ", ".join(BY_ID)
            raise UnknownCheckError(f"unknown check {check_id!r} (known: {known})")
        wanted.add(check_id)
        pending.extend(check.depends_on)
        pending.extend(check.after)
    return [check for check in CHECKS if check.id in wanted]


def order_problems() -> list[str]:
    """Registry mistakes: duplicate IDs, or a check listed before what it needs."""
    problems: list[str] = []
    seen: set[str] = set()
    for check in CHECKS:
        if check.id in seen:
            problems.append(f"duplicate check id {check.id}")
        for dep in (*check.depends_on, *check.after):
            if dep not in seen:
                problems.append(f"{check.id} is listed before {dep}, which it needs")
        seen.add(check.id)
    return problems
