"""interception: does something on the path present its own certificate for the
resolver? Signals: the SPKI differs from the given pins; the certificate names the
resolver but chains to another CA than the expected one (--ca); the certificate on 853
differs from the one the same name presents on 443; a reset or alert mid-handshake.
"""

from __future__ import annotations

from typing import Any

from dotaudit.probe.base import Check, CheckContext, Level, Outcome, failed, passed, warned
from dotaudit.probe.checks._shared import presented
from dotaudit.probe.tls_context import client_context
from dotaudit.probe.transport import ProbeError
from dotaudit.x509 import is_self_signed, issuer_text, load_certificate, spki_pin

MID_HANDSHAKE = ("reset", "closed", "alert")


class Interception(Check):
    id = "interception"
    title = "No sign of TLS interception"
    rfc = "RFC 8310 §5; RFC 7858 §4.2"
    level = Level.MUST
    advice = (
        "Find the device on the path that terminates TLS; pin the resolver's key (RFC "
        "7858 §4.2) and use strict mode (RFC 8310 §5)."
    )
    depends_on = ("reach.853",)
    after = ("reach.53", "cert.chain", "cert.name", "cert.pin")
    budget = 10.0

    def run(self, ctx: CheckContext) -> Outcome:
        info = ctx.handshake()
        if info.connection is None and info.error is not None:
            cut = {"handshake_error": str(info.error), "error_kind": info.error.kind}
            if info.error.kind in MID_HANDSHAKE:
                return warned(
                    f"the TLS handshake was cut short ({info.error}): typical of SNI-based "
                    "blocking or of an interceptor refusing to proxy",
                    cut,
                )
            raise info.error
        _, chain = presented(ctx)
        leaf = chain[0]
        pin = spki_pin(leaf)
        evidence: dict[str, Any] = {"issuer": issuer_text(leaf), "spki_pin": pin}
        strong: list[str] = []
        weak: list[str] = []
        pins = ctx.config.pins
        if pins and not any(spki_pin(c) in pins for c in chain):
            strong.append(f"its key ({pin}) matches none of the pins")
        names_resolver = ctx.name is not None and ctx.status("cert.name") == "pass"
        other_issuer = "issuer" in (info.verify_error or "")
        if other_issuer and names_resolver and not is_self_signed(leaf):
            text = f"a certificate for {ctx.name} issued by {issuer_text(leaf)!r}"
            if ctx.config.ca_file:
                strong.append(text + " instead of the expected CA")
            else:
                weak.append(text + ", which the system store does not trust")
        elif not info.verified and names_resolver and is_self_signed(leaf):
            weak.append(f"a self-signed certificate for {ctx.name}")
        self._compare_443(ctx, pin, info.verified, evidence, strong, weak)
        evidence["signals"] = strong + weak
        if strong:
            return failed("; ".join(strong), evidence)
        if weak:
            return warned("; ".join(weak), evidence)
        return passed(evidence)

    def _compare_443(
        self,
        ctx: CheckContext,
        pin: str,
        verified_853: bool,
        evidence: dict[str, Any],
        strong: list[str],
        weak: list[str],
    ) -> None:
        if ctx.name is None:
            evidence["port_443"] = "not compared: no name to ask for"
            return
        if ctx.evidence("reach.53").get("tcp443", {}).get("class") != "open":
            evidence["port_443"] = "not compared: TCP 443 is not open"
            return
        context = client_context(verify=True, ca_file=ctx.config.ca_file, alpn=("h2", "http/1.1"))
        verified_443 = True
        try:
            conn = ctx.net.tls_connect(ctx.address, 443, context, ctx.name, ctx.op())
        except ProbeError as exc:
            if exc.kind != "verify":
                evidence["port_443"] = f"not compared: {exc}"
                return
            verified_443 = False
            context = client_context(verify=False, alpn=("h2", "http/1.1"))
            try:
                conn = ctx.net.tls_connect(ctx.address, 443, context, ctx.name, ctx.op())
            except ProbeError as again:
                evidence["port_443"] = f"not compared: {again}"
                return
        try:
            der = conn.chain()[:1]
        finally:
            conn.close()
        if not der:
            evidence["port_443"] = "not compared: no certificate on 443"
            return
        pin_443 = spki_pin(load_certificate(der[0]))
        evidence["port_443"] = {"spki_pin": pin_443, "verified": verified_443}
        if pin_443 == pin:
            return
        if verified_443 and not verified_853:
            strong.append(
                f"443 presents a valid certificate for the same name, {ctx.port} another one"
            )
        else:
            weak.append(f"the certificate on {ctx.port} differs from the one on 443")
