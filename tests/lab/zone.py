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
