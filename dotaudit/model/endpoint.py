"""How the report writes a server's address with its port, in every format and message.

One spelling everywhere: ``192.0.2.1:853`` and ``[2001:db8::1]:853`` (RFC 3986 §3.2.2
brackets, so that the port cannot be read as part of an IPv6 address).
"""

from __future__ import annotations


def host_port(address: str, port: int | str | None) -> str:
    """``address:port``, the address in brackets when it is IPv6; the address alone
    when there is no port."""
    if port is None or port == "":
        return address
    if ":" in address and not address.startswith("["):
        return f"[{address}]:{port}"
    return f"{address}:{port}"
