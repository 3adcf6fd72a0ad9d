"""hijack.53: is it the same resolver on 53 as on 853? Ask both for their NSID (RFC
5001), the CHAOS TXT names ``id.server`` and ``hostname.bind`` (RFC 4892) and the
same ``--qname``; any difference means something on the path answers port 53 in the
resolver's place (a transparent DNS proxy or a hijacking middlebox).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dns.edns
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype

from dotaudit.probe.base import (
    Check,
    CheckContext,
    Level,
    Outcome,
    failed,
    not_applicable,
    passed,
    warned,
)
from dotaudit.probe.checks import _dns
from dotaudit.probe.transport import ProbeError

CHAOS_NAMES = ("id.server", "hostname.bind")
MAX_TEXT = 200


def _chaos_query(name: str) -> dns.message.Message:
    return dns.message.make_query(
        dns.name.from_text(name), dns.rdatatype.TXT, dns.rdataclass.CH, use_edns=0
    )


def _nsid_query(ctx: CheckContext) -> dns.message.Message:
    query = ctx.make_query()
    query.use_edns(0, payload=1232, options=[dns.edns.GenericOption(_dns.NSID, b"")])
    return query


def identity(ask: Callable[[dns.message.Message], dns.message.Message],
             ctx: CheckContext) -> dict[str, Any]:  # fmt: skip
    """What a resolver says about itself through ``ask``; None for what it does not tell."""
    seen: dict[str, Any] = {}
    reply = ask(_nsid_query(ctx))
    nsid = _dns.options(reply).get(_dns.NSID)
    seen["nsid"] = nsid.hex() if nsid else None
    seen["rcode"] = _dns.rcode(reply)
    seen["answer"] = _dns.answers(reply)
    for name in CHAOS_NAMES:
        try:
            chaos = ask(_chaos_query(name))
        except ProbeError:
            seen[name] = None
            continue
        texts = [rd.to_text()[:MAX_TEXT] for rrset in chaos.answer for rd in rrset]
        seen[name] = sorted(texts) or None
    return seen


def differences(
    tls: dict[str, Any], plain: dict[str, Any], dot_port: int = 853, plain_port: int = 53
) -> tuple[list[str], list[str]]:
    """(identity differences, answer differences): the first are proof, the second only a
    hint, since a resolver may rotate or geolocate its answers between two queries."""
    strong: list[str] = []
    for key in ("nsid", *CHAOS_NAMES):
        if tls.get(key) != plain.get(key) and (tls.get(key) or plain.get(key)):
            strong.append(
                f"{key}: {tls.get(key)} over {dot_port}, {plain.get(key)} over {plain_port}"
            )
    weak: list[str] = []
    if (tls["rcode"], tls["answer"]) != (plain["rcode"], plain["answer"]):
        weak.append(
            f"answer: {tls['rcode']} {tls['answer'][:3]} over {dot_port}, "
            f"{plain['rcode']} {plain['answer'][:3]} over {plain_port}"
        )
    return strong, weak


class Hijack53(Check):
    id = "hijack.53"
    title = "Port 53 reaches the same resolver as the DoT port"
    rfc = "RFC 5001 (NSID); RFC 4892 (id.server); RFC 8310 §5"
    level = Level.SHOULD
    advice = (
        "Something other than the DoT resolver answers port 53 on this address: look for "
        "a transparent DNS proxy or a NAT rule that redirects port 53."
    )
    depends_on = ("reach.853",)
    after = ("reach.53", "dns.answer")
    budget = 12.0

    def run(self, ctx: CheckContext) -> Outcome:
        port = int(_dns.option(ctx, "plain_port", 53))
        udp = ctx.evidence("reach.53").get("udp53", {})
        if port == 53 and "reach.53" in ctx.results and not udp.get("answered"):
            return not_applicable("UDP 53 does not answer on this address: nothing to compare")
        conn = _dns.live(ctx)

        def over_tls(query: dns.message.Message) -> dns.message.Message:
            return _dns.exchange(ctx, conn, query)[1]

        def over_udp(query: dns.message.Message) -> dns.message.Message:
            return ctx.net.udp_dns(ctx.address, port, query, ctx.op())[0]

        tls = identity(over_tls, ctx)
        try:
            plain = identity(over_udp, ctx)
        except ProbeError as exc:
            return not_applicable(
                f"UDP {port} did not answer ({exc}): nothing to compare", {"tls": tls}
            )
        evidence: dict[str, Any] = {"tls": tls, "plain": plain, "plain_port": port}
        strong, weak = differences(tls, plain, ctx.port, port)
        evidence["differences"] = strong + weak
        if strong:
            return failed(
                f"port {port} is answered by something other than the DoT resolver: "
                + "; ".join(strong + weak),
                evidence,
            )
        if weak:
            return warned(
                f"the same question got different answers on {port} and {ctx.port} ("
                + "; ".join(weak)
                + "): a proxy on 53, or answers that rotate",
                evidence,
            )
        told = [k for k in ("nsid", *CHAOS_NAMES) if tls.get(k) is not None]
        note = "same answer" + (f" and same {', '.join(told)}" if told else
                                " (the resolver tells no NSID or CHAOS identity)")  # fmt: skip
        return passed(evidence, note)
