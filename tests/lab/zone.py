"""The lab's DNS data: every resolver (Unbound, the DoQ server) answers only from this."""

from __future__ import annotations

# A TXT answer whose response is well over 468 bytes, so padding spills into a second block.
BIG_TXT = tuple(f"chunk{i:02d}-" + "x" * 90 for i in range(6))

RECORDS: tuple[tuple[str, str, str], ...] = (
    ("dns.test.", "A", "127.53.0.1"),
    ("www.lab.test.", "A", "198.51.100.80"),
    ("www.lab.test.", "AAAA", "2001:db8::80"),
    ("mail.lab.test.", "A", "198.51.100.25"),
    ("mail.lab.test.", "MX", "10 mail.lab.test."),
    ("intranet.lab.test.", "A", "198.51.100.10"),
    ("printer.lab.test.", "A", "198.51.100.31"),
    ("secret.lab.test.", "A", "198.51.100.66"),
    ("big.lab.test.", "TXT", " ".join(f'"{s}"' for s in BIG_TXT)),
)
TTL = 300


def unbound_local_data() -> list[str]:
    return [f"local-data: '{name} {TTL} IN {rtype} {rdata}'" for name, rtype, rdata in RECORDS]


def zone_text() -> str:
    """Master-file text (for dnspython) of the same records."""
    return "".join(f"{name} {TTL} IN {rtype} {rdata}\n" for name, rtype, rdata in RECORDS)


# DDR (RFC 9462): what the "ddr" Unbound (DDR_ADDRESS) designates. Each record is one case
# the discovery tests expect, named by its priority. Unbound 1.17 knows no "dohpath" key
# name, so it is written as key7; the generic-RDATA record is one dnspython refuses.
DDR_ADDRESS = "127.53.5.1"
DDR_ALIAS_ADDRESS = "127.53.5.2"
DDR_CASES = {
    1: "DoT at the DDR resolver itself, valid leaf listing its IP: verified",
    2: "DoQ at the lab DoQ server, valid leaf listing the DDR resolver's IP: verified",
    3: "DoH at the lab dnsdist, valid leaf listing the DDR resolver's IP: verified",
    4: "DoT at the wrong_host Unbound, whose leaf (other.test) lists no IP: not verified",
    5: "DoT at the untrusted Unbound, whose leaf chains to the rogue CA: not verified",
    6: "a target that does not resolve and has no address hints",
    7: "TargetName '.', which _dns.resolver.arpa MUST NOT use: malformed",
    8: "mandatory lists alpn, which the record lacks: dnspython refuses it (malformed)",
    9: "marks an unknown key mandatory: ignored, as a client must",
}
DDR_RECORDS: tuple[str, ...] = (
    f"_dns.resolver.arpa. 300 IN SVCB 1 dns.test. alpn=dot ipv4hint={DDR_ADDRESS}",
    "_dns.resolver.arpa. 300 IN SVCB 2 dns.test. alpn=doq ipv4hint=127.53.3.1",
    '_dns.resolver.arpa. 300 IN SVCB 3 dns.test. alpn=h2 key7="/dns-query{?dns}" '
    "ipv4hint=127.53.4.1",
    "_dns.resolver.arpa. 300 IN SVCB 4 other.test. alpn=dot ipv4hint=127.53.1.3",
    "_dns.resolver.arpa. 300 IN SVCB 5 dns.test. alpn=dot ipv4hint=127.53.1.5",
    "_dns.resolver.arpa. 300 IN SVCB 6 nowhere.ddr.test. alpn=dot",
    "_dns.resolver.arpa. 300 IN SVCB 7 . alpn=dot",
    # priority 8, target dns.test., mandatory=alpn (key 0, length 2, key 1) and no alpn
    r"_dns.resolver.arpa. 300 IN TYPE64 \# 18 0008 03646e730474657374 00 0000 0002 0001",
    "_dns.resolver.arpa. 300 IN SVCB 9 dns.test. alpn=dot mandatory=key65000 key65000=x",
)
# The alias resolver: AliasMode to a name whose ServiceMode record designates a DoT on
# its own address, where the wrong_host leaf (no IP SANs) is served: opportunistic only.
DDR_ALIAS_RECORDS: tuple[str, ...] = (
    "_dns.resolver.arpa. 300 IN SVCB 0 svc.ddr.test.",
    f"svc.ddr.test. 300 IN SVCB 1 other.test. alpn=dot ipv4hint={DDR_ALIAS_ADDRESS}",
)
